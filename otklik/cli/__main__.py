from otklik.cli.main import app

app()
