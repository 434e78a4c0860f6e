"""A small, realistic CCTV price list of a distributor in Argentina (prices in ARS with IVA), as the seller's
CSV would be: `;`-separated, es-AR decimals, attributes as `k=v;k=v` in a quoted cell. Some products are out
of stock (stock 0), one is discontinued (made inactive by the tests that need it)."""

from __future__ import annotations

CATALOG_CSV = """sku;name;brand;category;price;currency;stock;description;attributes
DS-2CD1043G0-I;Cámara IP domo 4MP lente 2.8mm;Hikvision;Cámaras;58.900,00;ARS;0;Domo IP 4 megapíxeles, IR 30 m, IP67;"tech=ip;form=domo;resolution=4MP;lens_mm=2.8;outdoor=si;poe=si"
DS-2CD1143G0-I;Cámara IP domo 4MP lente 3.6mm;Hikvision;Cámaras;61.500,00;ARS;12;Domo IP 4 MP, IR 30 m, PoE;"tech=ip;form=domo;resolution=4MP;lens_mm=3.6;outdoor=si;poe=si"
DS-2CD1023G0E-I;Cámara IP bullet 2MP 2.8mm;Hikvision;Cámaras;42.300,00;ARS;25;Bala IP 1080p, IR 30 m, exterior;"tech=ip;form=bullet;resolution=2MP;lens_mm=2.8;outdoor=si;poe=si"
DS-2CD2043G2-I;Cámara IP bullet 4MP AcuSense 2.8mm;Hikvision;Cámaras;89.700,00;ARS;7;Tubo IP AcuSense 4 MP, detección de personas y vehículos;"tech=ip;form=bullet;resolution=4MP;lens_mm=2.8;outdoor=si;poe=si"
DS-2CE56D0T-IRPF;Cámara Turbo HD domo 2MP 2.8mm;Hikvision;Cámaras;18.900,00;ARS;40;Domo analógica Turbo HD 1080p, interior;"tech=analogica;form=domo;resolution=2MP;lens_mm=2.8;outdoor=no"
DS-2CE16D0T-IRPF;Cámara Turbo HD bullet 2MP 3.6mm;Hikvision;Cámaras;19.800,00;ARS;0;Tubo analógico Turbo HD 1080p, IR 20 m;"tech=analogica;form=bullet;resolution=2MP;lens_mm=3.6;outdoor=si"
DS-2CE16D0T-ITPF;Cámara Turbo HD bullet 2MP 2.8mm;Hikvision;Cámaras;20.400,00;ARS;15;Tubo analógico Turbo HD 1080p, IR 25 m;"tech=analogica;form=bullet;resolution=2MP;lens_mm=2.8;outdoor=si"
DS-2CV1021G0-IDW1;Cámara WiFi bullet 2MP;Hikvision;Cámaras;49.900,00;ARS;6;Cámara inalámbrica WiFi con audio;"tech=wifi;form=bullet;resolution=2MP;lens_mm=2.8;outdoor=si"
IPC-HDW1431T1-S4;Cámara IP domo 4MP 2.8mm;Dahua;Cámaras;55.200,00;ARS;9;Eyeball IP 4 MP, IR 30 m, PoE;"tech=ip;form=domo;resolution=4MP;lens_mm=2.8;outdoor=si;poe=si"
IPC-HFW1230S-S5;Cámara IP bullet 2MP 3.6mm;Dahua;Cámaras;39.900,00;ARS;14;Bullet IP Lite 2 MP, IR 30 m;"tech=ip;form=bullet;resolution=2MP;lens_mm=3.6;outdoor=si;poe=si"
IPC-HFW2441S-S;Cámara IP bullet 4MP WizSense;Dahua;Cámaras;86.400,00;ARS;0;Bullet WizSense 4 MP con IA;"tech=ip;form=bullet;resolution=4MP;lens_mm=2.8;outdoor=si;poe=si"
HAC-HDW1200TRQ;Cámara HDCVI domo 2MP 2.8mm;Dahua;Cámaras;17.600,00;ARS;33;Domo HDCVI 1080p para interior;"tech=analogica;form=domo;resolution=2MP;lens_mm=2.8;outdoor=no"
HAC-HFW1500CM;Cámara HDCVI bullet 5MP 2.8mm;Dahua;Cámaras;31.200,00;ARS;11;Bullet HDCVI 5 MP, IR 30 m;"tech=analogica;form=bullet;resolution=5MP;lens_mm=2.8;outdoor=si"
DS-7108NI-Q1/8P;NVR 8 canales PoE 4K;Hikvision;Grabadores;165.000,00;ARS;4;Grabador de red 8 canales con 8 puertos PoE, 1 disco;"tech=ip;type=nvr;channels=8;poe=si"
DS-7616NI-Q2;NVR 16 canales 4K;Hikvision;Grabadores;289.000,00;ARS;0;Grabador de red 16 canales, 2 discos;"tech=ip;type=nvr;channels=16"
DS-7208HGHI-M1;DVR Turbo HD 8 canales 1080p;Hikvision;Grabadores;98.500,00;ARS;10;Grabador Turbo HD 8 canales + 2 IP;"tech=analogica;type=dvr;channels=8"
NVR2108HS-8P-S3;NVR 8 canales 8 PoE;Dahua;Grabadores;158.300,00;ARS;3;NVR Lite 8 canales con PoE;"tech=ip;type=nvr;channels=8;poe=si"
NVR4216-4KS2;NVR 16 canales 4K;Dahua;Grabadores;276.000,00;ARS;5;NVR 16 canales, 2 discos, 4K;"tech=ip;type=nvr;channels=16"
XVR1B08-I;XVR 8 canales Penta-brid;Dahua;Grabadores;92.100,00;ARS;8;Grabador XVR 8 canales, HDCVI/AHD/TVI/IP;"tech=analogica;type=xvr;channels=8"
XVR5116HS-I3;XVR 16 canales 1080p;Dahua;Grabadores;188.000,00;ARS;2;Grabador XVR 16 canales con IA;"tech=analogica;type=xvr;channels=16"
WD10PURZ;Disco rígido 1TB WD Purple;Western Digital;Discos;64.000,00;ARS;20;Disco para videovigilancia 1 TB, 24/7;"capacity=1TB"
WD20PURZ;Disco rígido 2TB WD Purple;Western Digital;Discos;89.000,00;ARS;0;Disco para videovigilancia 2 TB;"capacity=2TB"
ST2000VX015;Disco rígido 2TB SkyHawk;Seagate;Discos;86.500,00;ARS;6;Disco Seagate SkyHawk 2 TB para DVR y NVR;"capacity=2TB"
ST4000VX016;Disco rígido 4TB SkyHawk;Seagate;Discos;142.000,00;ARS;3;Disco Seagate SkyHawk 4 TB;"capacity=4TB"
DS-1280ZJ-XS;Caja de conexiones para bullet;Hikvision;Accesorios;8.900,00;ARS;50;Caja de paso para cámaras tubo;"form=caja"
"""
