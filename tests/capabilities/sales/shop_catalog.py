"""A distributor's price list for the conversation tests (ARS with IVA): cameras, recorders, disks and
switches of several brands, some out of stock."""

from __future__ import annotations

SHOP_ROWS = [
    ("DS-2CD1043G2-I", "Cámara IP domo 4MP 2.8mm", "Hikvision", "Cámaras", "58900.00", 0,
     "tech=ip;form=domo;resolution=4MP;lens_mm=2.8;outdoor=si;poe=si"),
    ("DS-2CD1143G2-I", "Cámara IP domo 4MP 3.6mm", "Hikvision", "Cámaras", "61500.00", 12,
     "tech=ip;form=domo;resolution=4MP;lens_mm=3.6;outdoor=si;poe=si"),
    ("DS-2CD1023G2-I", "Cámara IP bullet 2MP 2.8mm", "Hikvision", "Cámaras", "42300.00", 25,
     "tech=ip;form=bullet;resolution=2MP;lens_mm=2.8;outdoor=si;poe=si"),
    ("DS-2CE56D0T-IRPF", "Cámara Turbo HD domo 2MP", "Hikvision", "Cámaras", "18900.00", 40,
     "tech=analogica;form=domo;resolution=2MP;lens_mm=2.8;outdoor=no"),
    ("DS-2CE16D0T-IRPF", "Cámara Turbo HD bullet 2MP", "Hikvision", "Cámaras", "19800.00", 3,
     "tech=analogica;form=bullet;resolution=2MP;lens_mm=3.6;outdoor=si"),
    ("DS-2CV2041G2-IDW", "Cámara WiFi domo 4MP", "Hikvision", "Cámaras", "75400.00", 6,
     "tech=wifi;form=domo;resolution=4MP;lens_mm=2.8;outdoor=no"),
    ("DS-2CD2043G2-I", "Cámara IP bullet 4MP AcuSense", "Hikvision", "Cámaras", "89700.00", 7,
     "tech=ip;form=bullet;resolution=4MP;lens_mm=2.8;outdoor=si;poe=si"),
    ("IPC-HDW1431T1-S4", "Cámara IP domo 4MP 2.8mm", "Dahua", "Cámaras", "55200.00", 9,
     "tech=ip;form=domo;resolution=4MP;lens_mm=2.8;outdoor=si;poe=si"),
    ("IPC-HFW1230S-S5", "Cámara IP bullet 2MP 3.6mm", "Dahua", "Cámaras", "39900.00", 0,
     "tech=ip;form=bullet;resolution=2MP;lens_mm=3.6;outdoor=si;poe=si"),
    ("DS-7608NI-Q1", "NVR 8 canales 4K", "Hikvision", "Grabadores", "165000.00", 4, "tech=ip;type=nvr;channels=8"),
    ("DS-7616NI-Q2", "NVR 16 canales 4K", "Hikvision", "Grabadores", "289000.00", 0, "tech=ip;type=nvr;channels=16"),
    ("NVR4216-4KS2", "NVR 16 canales 4K 2 discos", "Dahua", "Grabadores", "276000.00", 5,
     "tech=ip;type=nvr;channels=16"),
    ("NVR5216-16P-4KS2", "NVR 16 canales 16 PoE", "Dahua", "Grabadores", "398000.00", 2,
     "tech=ip;type=nvr;channels=16;poe=si"),
    ("DS-7208HGHI-M1", "DVR Turbo HD 8 canales", "Hikvision", "Grabadores", "98500.00", 10,
     "tech=analogica;type=dvr;channels=8"),
    ("WD10PURZ", "Disco rígido 1TB WD Purple", "Western Digital", "Discos", "64000.00", 20, "capacity=1TB"),
    ("WD20PURZ", "Disco rígido 2TB WD Purple", "Western Digital", "Discos", "89000.00", 0, "capacity=2TB"),
    ("ST2000VX015", "Disco rígido 2TB SkyHawk", "Seagate", "Discos", "86500.00", 6, "capacity=2TB"),
    ("DS-3E0105P-E", "Switch PoE 4 puertos", "Hikvision", "Redes", "52000.00", 15, "poe=si"),
    ("TL-SG1005P", "Switch PoE 5 puertos", "TP-Link", "Redes", "48500.00", 8, "poe=si"),
]  # fmt: skip


def rows() -> list[dict[str, str]]:
    return [
        {"sku": sku, "name": name, "brand": brand, "category": category, "price": price, "currency": "ARS",
         "stock": str(stock), "description": name, "attributes": attrs}
        for sku, name, brand, category, price, stock, attrs in SHOP_ROWS
    ]  # fmt: skip
