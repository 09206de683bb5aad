"""Static facts about the Dutch lease market that the catalog generator draws from.

Kept apart from the generator so the data can be read (and extended) without reading
any randomness: which makes and models exist, their engines, body types, trims,
colours and the option vocabulary of the real API (the 19 option names of a real
`GET Vehicle` response, in the API's alphabetical order).

Figures (list prices, power, ranges) are rounded public catalogue values; they only
need to be plausible, not exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class FuelType(IntEnum):
    """`externalFuelTypeId` of the API.

    Only 0 = Benzine is confirmed by a real response (a BMW 320i); the others are our
    choice. Hybride covers plug-in and full hybrids; only Elektrisch is `isElectric`.
    """

    BENZINE = 0
    DIESEL = 1
    HYBRIDE = 2
    ELEKTRISCH = 3


B, D, H, E = FuelType.BENZINE, FuelType.DIESEL, FuelType.HYBRIDE, FuelType.ELEKTRISCH


@dataclass(frozen=True, slots=True)
class EngineSpec:
    """One engine of a model: the first word(s) of the API's `type` string."""

    designation: str
    fuel: FuelType
    kw: int
    range_km: int = 0  # WLTP range, electric engines only


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One make + model: becomes one cluster of the showroom."""

    make: str
    model: str
    body_type: str
    doors: int
    list_price: int  # fiscal value (catalogue price) of the base version, in euro
    engines: tuple[EngineSpec, ...]
    since: int = 2020  # first model year on the Dutch market
    seven_seats: bool = False

    @property
    def key(self) -> tuple[str, str]:
        """How the API groups vehicles into clusters."""
        return (self.make, self.model)


def _m(
    make: str,
    model: str,
    body: str,
    doors: int,
    price: int,
    *engines: tuple,
    since: int = 2020,
    seven: bool = False,
) -> ModelSpec:
    return ModelSpec(
        make=make,
        model=model,
        body_type=body,
        doors=doors,
        list_price=price,
        engines=tuple(EngineSpec(*engine) for engine in engines),
        since=since,
        seven_seats=seven,
    )


HB, SD, SW, SUV, MPV = "Hatchback", "Sedan", "Stationwagon", "SUV", "MPV"

# Body type -> code the imagin image service uses in its paths ("5cv" in real data).
BODY_CODES = {HB: "hb", SD: "sd", SW: "cv", SUV: "su", MPV: "mp"}

# fmt: off
MODELS: tuple[ModelSpec, ...] = (
    # BMW
    _m("BMW", "1 Serie", HB, 5, 38500, ("118iA", B, 100), ("120iA", B, 125)),
    _m("BMW", "2 Serie Active Tourer", MPV, 5, 43900, ("218iA", B, 100),
       ("225eA xDrive", H, 180)),
    _m("BMW", "3 Serie Sedan", SD, 4, 52500, ("318iA", B, 115), ("320iA", B, 135),
       ("330eA", H, 215)),
    _m("BMW", "3 Serie Touring", SW, 5, 54200, ("318iA", B, 115), ("320iA", B, 135),
       ("320eA", H, 150), ("330eA", H, 215)),
    _m("BMW", "5 Serie Touring", SW, 5, 72900, ("520iA", B, 153), ("530eA", H, 220)),
    _m("BMW", "i4", HB, 5, 61900, ("eDrive35", E, 210, 483), ("eDrive40", E, 250, 590)),
    _m("BMW", "i5 Touring", SW, 5, 79900, ("eDrive40", E, 250, 560), since=2024),
    _m("BMW", "iX1", SUV, 5, 53900, ("eDrive20", E, 150, 475),
       ("xDrive30", E, 230, 440), since=2023),
    _m("BMW", "iX3", SUV, 5, 68900, ("Executive", E, 210, 460)),
    _m("BMW", "X1", SUV, 5, 49900, ("sDrive18iA", B, 100), ("xDrive25eA", H, 180)),
    _m("BMW", "X3", SUV, 5, 69900, ("xDrive20iA", B, 140), ("xDrive30eA", H, 215)),
    # Audi
    _m("Audi", "A3 Sportback", HB, 5, 39900, ("30 TFSI", B, 81), ("35 TFSI", B, 110),
       ("40 TFSI e", H, 150)),
    _m("Audi", "A4 Avant", SW, 5, 52900, ("35 TFSI", B, 110), ("40 TDI", D, 150)),
    _m("Audi", "A6 Avant", SW, 5, 71900, ("40 TFSI", B, 150), ("50 TFSI e", H, 220)),
    _m("Audi", "Q3 Sportback", SUV, 5, 51900, ("35 TFSI", B, 110),
       ("45 TFSI e", H, 180)),
    _m("Audi", "Q4 e-tron", SUV, 5, 54900, ("40", E, 150, 520), ("45", E, 210, 510)),
    _m("Audi", "Q4 Sportback e-tron", SUV, 5, 57900, ("40", E, 150, 535),
       ("45", E, 210, 525)),
    _m("Audi", "Q5", SUV, 5, 69900, ("40 TFSI", B, 150), ("55 TFSI e", H, 270)),
    _m("Audi", "Q8 e-tron", SUV, 5, 89900, ("50", E, 250, 491), ("55", E, 300, 582),
       since=2023),
    # Mercedes-Benz
    _m("Mercedes-Benz", "A-Klasse", HB, 5, 41900, ("A 180", B, 100),
       ("A 250 e", H, 160)),
    _m("Mercedes-Benz", "C-Klasse Estate", SW, 5, 58900, ("C 180", B, 125),
       ("C 300 e", H, 230)),
    _m("Mercedes-Benz", "E-Klasse Estate", SW, 5, 79900, ("E 200", B, 150),
       ("E 300 e", H, 230), since=2023),
    _m("Mercedes-Benz", "GLA", SUV, 5, 47900, ("GLA 200", B, 120),
       ("GLA 250 e", H, 160)),
    _m("Mercedes-Benz", "GLC", SUV, 5, 71900, ("GLC 200 4MATIC", B, 150),
       ("GLC 300 e 4MATIC", H, 230)),
    _m("Mercedes-Benz", "EQA", SUV, 5, 55900, ("EQA 250+", E, 140, 535)),
    _m("Mercedes-Benz", "EQB", SUV, 5, 59900, ("EQB 250+", E, 140, 505), seven=True),
    _m("Mercedes-Benz", "EQE", SD, 4, 79900, ("EQE 300", E, 180, 635)),
    # Volkswagen
    _m("Volkswagen", "Polo", HB, 5, 25900, ("1.0 TSI", B, 70), ("1.0 TSI DSG", B, 85)),
    _m("Volkswagen", "Golf", HB, 5, 36900, ("1.5 eTSI", B, 110),
       ("1.4 eHybrid", H, 150)),
    _m("Volkswagen", "Golf Variant", SW, 5, 39900, ("1.5 eTSI", B, 110),
       ("2.0 TDI", D, 110)),
    _m("Volkswagen", "Passat Variant", SW, 5, 52900, ("1.5 eTSI", B, 110),
       ("1.5 eHybrid", H, 150)),
    _m("Volkswagen", "T-Roc", SUV, 5, 36900, ("1.0 TSI", B, 85), ("1.5 TSI", B, 110)),
    _m("Volkswagen", "Tiguan", SUV, 5, 49900, ("1.5 eTSI", B, 110),
       ("1.5 eHybrid", H, 150)),
    _m("Volkswagen", "ID.3", HB, 5, 39900, ("Pure 52 kWh", E, 125, 388),
       ("Pro 58 kWh", E, 150, 426), ("Pro S 77 kWh", E, 150, 546)),
    _m("Volkswagen", "ID.4", SUV, 5, 48900, ("Pure 52 kWh", E, 125, 360),
       ("Pro 77 kWh", E, 210, 550)),
    _m("Volkswagen", "ID.5", SUV, 5, 53900, ("Pro 77 kWh", E, 210, 553),
       ("GTX 77 kWh", E, 250, 513)),
    _m("Volkswagen", "ID.7 Tourer", SW, 5, 56900, ("Pro 77 kWh", E, 210, 607),
       ("Pro S 86 kWh", E, 210, 685), since=2024),
    _m("Volkswagen", "ID. Buzz", MPV, 5, 64900, ("Pro 77 kWh", E, 150, 423), since=2022,
       seven=True),
    # Skoda
    _m("Skoda", "Fabia", HB, 5, 24900, ("1.0 TSI", B, 70)),
    _m("Skoda", "Octavia Combi", SW, 5, 37900, ("1.5 TSI e-TEC", B, 110),
       ("2.0 TDI", D, 110), ("1.4 TSI iV", H, 150)),
    _m("Skoda", "Superb Combi", SW, 5, 49900, ("1.5 TSI", B, 110),
       ("1.4 TSI iV", H, 160)),
    _m("Skoda", "Kamiq", SUV, 5, 30900, ("1.0 TSI", B, 85)),
    _m("Skoda", "Karoq", SUV, 5, 39900, ("1.5 TSI", B, 110)),
    _m("Skoda", "Kodiaq", SUV, 5, 49900, ("1.5 TSI", B, 110), ("2.0 TDI", D, 110),
       seven=True),
    _m("Skoda", "Enyaq", SUV, 5, 49900, ("60", E, 132, 412), ("85", E, 210, 570),
       ("80x", E, 195, 503)),
    _m("Skoda", "Elroq", SUV, 5, 38900, ("50", E, 125, 375), ("85", E, 210, 580),
       since=2025),
    # Seat / Cupra
    _m("Seat", "Ibiza", HB, 5, 23900, ("1.0 TSI", B, 70)),
    _m("Seat", "Arona", SUV, 5, 27900, ("1.0 TSI", B, 85)),
    _m("Seat", "Leon Sportstourer", SW, 5, 36900, ("1.5 eTSI", B, 110),
       ("1.4 e-Hybrid", H, 150)),
    _m("Seat", "Ateca", SUV, 5, 38900, ("1.5 TSI", B, 110)),
    _m("Cupra", "Born", HB, 5, 42900, ("58 kWh", E, 150, 424), ("77 kWh", E, 170, 548)),
    _m("Cupra", "Formentor", SUV, 5, 44900, ("1.5 TSI", B, 110),
       ("1.4 e-Hybrid", H, 150)),
    _m("Cupra", "Leon Sportstourer", SW, 5, 41900, ("1.5 eTSI", B, 110),
       ("1.4 e-Hybrid", H, 180)),
    # Kia
    _m("Kia", "Picanto", HB, 5, 18900, ("1.0 MPi", B, 49)),
    _m("Kia", "Ceed Sportswagon", SW, 5, 32900, ("1.5 T-GDi", B, 103),
       ("1.6 GDi PHEV", H, 104)),
    _m("Kia", "XCeed", HB, 5, 34900, ("1.5 T-GDi", B, 118), ("1.6 GDi PHEV", H, 104)),
    _m("Kia", "Niro", SUV, 5, 36900, ("1.6 GDi Hybrid", H, 95),
       ("1.6 GDi PHEV", H, 132), ("EV 64,8 kWh", E, 150, 460)),
    _m("Kia", "Sportage", SUV, 5, 41900, ("1.6 T-GDi", B, 110),
       ("1.6 T-GDi PHEV", H, 195)),
    _m("Kia", "EV6", SUV, 5, 51900, ("RWD 77,4 kWh", E, 168, 528),
       ("AWD 77,4 kWh", E, 239, 506)),
    _m("Kia", "EV9", SUV, 5, 79900, ("AWD 99,8 kWh", E, 283, 505), since=2023,
       seven=True),
    _m("Kia", "EV3", SUV, 5, 36900, ("58,3 kWh", E, 150, 436),
       ("81,4 kWh", E, 150, 605), since=2024),
    # Hyundai
    _m("Hyundai", "i20", HB, 5, 24900, ("1.0 T-GDI", B, 74)),
    _m("Hyundai", "i30 Wagon", SW, 5, 32900, ("1.0 T-GDI", B, 88),
       ("1.5 T-GDI", B, 117)),
    _m("Hyundai", "Kona", SUV, 5, 34900, ("1.6 GDI HEV", H, 104),
       ("Electric 65,4 kWh", E, 160, 514)),
    _m("Hyundai", "Tucson", SUV, 5, 43900, ("1.6 T-GDI HEV", H, 169),
       ("1.6 T-GDI PHEV", H, 195)),
    _m("Hyundai", "IONIQ 5", SUV, 5, 49900, ("58 kWh", E, 125, 384),
       ("77,4 kWh", E, 168, 507)),
    _m("Hyundai", "IONIQ 6", SD, 4, 52900, ("77,4 kWh RWD", E, 168, 614)),
    # Toyota
    _m("Toyota", "Aygo X", HB, 5, 19900, ("1.0 VVT-i", B, 53)),
    _m("Toyota", "Yaris", HB, 5, 26900, ("1.5 Hybrid", H, 85)),
    _m("Toyota", "Yaris Cross", SUV, 5, 31900, ("1.5 Hybrid", H, 85),
       ("1.5 Hybrid AWD-i", H, 85)),
    _m("Toyota", "Corolla Touring Sports", SW, 5, 37900, ("1.8 Hybrid", H, 103),
       ("2.0 Hybrid", H, 145)),
    _m("Toyota", "C-HR", SUV, 5, 39900, ("1.8 Hybrid", H, 103), ("2.0 PHEV", H, 164),
       since=2024),
    _m("Toyota", "RAV4", SUV, 5, 49900, ("2.5 Hybrid", H, 160),
       ("2.5 Plug-in Hybrid AWD", H, 225)),
    _m("Toyota", "bZ4X", SUV, 5, 47900, ("FWD 71,4 kWh", E, 150, 513), since=2022),
    # Peugeot
    _m("Peugeot", "208", HB, 5, 26900, ("1.2 PureTech", B, 74), ("1.2 Hybrid", H, 74)),
    _m("Peugeot", "e-208", HB, 5, 36900, ("EV 50 kWh", E, 100, 362),
       ("EV 51 kWh", E, 115, 410)),
    _m("Peugeot", "308", HB, 5, 36900, ("1.2 PureTech", B, 96),
       ("1.6 HYbrid 180", H, 133)),
    _m("Peugeot", "308 SW", SW, 5, 38900, ("1.2 PureTech", B, 96),
       ("1.6 HYbrid 180", H, 133), ("1.5 BlueHDi", D, 96)),
    _m("Peugeot", "e-308 SW", SW, 5, 45900, ("EV 54 kWh", E, 115, 411), since=2023),
    _m("Peugeot", "2008", SUV, 5, 31900, ("1.2 PureTech", B, 96)),
    _m("Peugeot", "e-2008", SUV, 5, 38900, ("EV 54 kWh", E, 115, 406)),
    _m("Peugeot", "3008", SUV, 5, 43900, ("1.2 Hybrid", H, 100),
       ("1.6 HYbrid 225", H, 165)),
    _m("Peugeot", "e-3008", SUV, 5, 49900, ("EV 73 kWh", E, 157, 527), since=2024),
    _m("Peugeot", "5008", SUV, 5, 47900, ("1.2 Hybrid", H, 100), seven=True),
    _m("Peugeot", "408", HB, 5, 41900, ("1.2 PureTech", B, 96),
       ("1.6 HYbrid 225", H, 165), since=2023),
    # Renault
    _m("Renault", "Clio", HB, 5, 23900, ("TCe 90", B, 67),
       ("E-Tech Full Hybrid 145", H, 105)),
    _m("Renault", "Captur", SUV, 5, 29900, ("TCe 90", B, 67),
       ("E-Tech Full Hybrid 145", H, 105)),
    _m("Renault", "Austral", SUV, 5, 41900, ("E-Tech Full Hybrid 200", H, 146),
       since=2023),
    _m("Renault", "Megane E-Tech", HB, 5, 42900, ("EV60 220pk", E, 160, 450),
       since=2022),
    _m("Renault", "Scenic E-Tech", SUV, 5, 45900, ("EV87 220pk", E, 160, 625),
       since=2024),
    _m("Renault", "5 E-Tech", HB, 5, 32900, ("52 kWh 150pk", E, 110, 410), since=2025),
    # Citroën
    _m("Citroën", "C3", HB, 5, 22900, ("1.2 PureTech", B, 61)),
    _m("Citroën", "C4", HB, 5, 31900, ("1.2 PureTech", B, 96)),
    _m("Citroën", "ë-C4", HB, 5, 38900, ("EV 50 kWh", E, 100, 357),
       ("EV 54 kWh", E, 115, 420)),
    _m("Citroën", "C5 X", HB, 5, 41900, ("1.6 Plug-in Hybrid 225", H, 165)),
    _m("Citroën", "C5 Aircross", SUV, 5, 38900, ("1.2 PureTech", B, 96),
       ("1.6 Plug-in Hybrid 225", H, 165)),
    # Opel
    _m("Opel", "Corsa", HB, 5, 24900, ("1.2 Turbo", B, 74)),
    _m("Opel", "Corsa Electric", HB, 5, 34900, ("50 kWh", E, 100, 357),
       ("51 kWh", E, 115, 402)),
    _m("Opel", "Astra Sports Tourer", SW, 5, 36900, ("1.2 Turbo", B, 96),
       ("1.6 Hybrid", H, 133)),
    _m("Opel", "Mokka", SUV, 5, 32900, ("1.2 Turbo", B, 96)),
    _m("Opel", "Grandland", SUV, 5, 41900, ("1.2 Turbo Hybrid", H, 100),
       ("1.6 Turbo Hybrid", H, 165)),
    # Ford
    _m("Ford", "Focus Wagon", SW, 5, 34900, ("1.0 EcoBoost Hybrid", H, 92)),
    _m("Ford", "Puma", SUV, 5, 31900, ("1.0 EcoBoost Hybrid", H, 92)),
    _m("Ford", "Kuga", SUV, 5, 42900, ("2.5 PHEV", H, 165), ("1.5 EcoBoost", B, 110)),
    _m("Ford", "Mustang Mach-E", SUV, 5, 56900, ("RWD 75 kWh", E, 198, 440),
       ("Extended Range RWD", E, 216, 600)),
    _m("Ford", "Explorer", SUV, 5, 46900, ("Extended Range RWD", E, 210, 602),
       since=2024),
    # Tesla
    _m("Tesla", "Model 3", SD, 4, 44900, ("Standard Range Plus", E, 208, 491),
       ("Long Range AWD", E, 366, 629)),
    _m("Tesla", "Model Y", SUV, 5, 49900, ("RWD", E, 220, 455),
       ("Long Range AWD", E, 378, 533)),
    # Volvo
    _m("Volvo", "EX30", SUV, 5, 36900, ("Single Motor", E, 200, 344),
       ("Single Motor Extended Range", E, 200, 476), since=2024),
    _m("Volvo", "XC40", SUV, 5, 47900, ("B3", B, 120), ("T5 Recharge", H, 192)),
    _m("Volvo", "EX40", SUV, 5, 54900, ("Single Motor Extended Range", E, 185, 560)),
    _m("Volvo", "V60", SW, 5, 54900, ("B4", B, 145), ("T6 Recharge AWD", H, 250)),
    _m("Volvo", "XC60", SUV, 5, 69900, ("B5", B, 184), ("T6 Recharge AWD", H, 250)),
    # Polestar
    _m("Polestar", "2", HB, 5, 51900, ("Standard Range Single Motor", E, 165, 440),
       ("Long Range Dual Motor", E, 300, 480)),
    _m("Polestar", "4", SUV, 5, 62900, ("Long Range Single Motor", E, 200, 620),
       since=2024),
    # Nissan
    _m("Nissan", "Juke", SUV, 5, 29900, ("1.0 DIG-T", B, 84), ("1.6 Hybrid", H, 105)),
    _m("Nissan", "Qashqai", SUV, 5, 38900, ("1.3 MHEV", B, 103),
       ("1.5 e-Power", H, 140)),
    _m("Nissan", "Leaf", HB, 5, 34900, ("39 kWh", E, 110, 270),
       ("e+ 59 kWh", E, 160, 385)),
    _m("Nissan", "Ariya", SUV, 5, 52900, ("63 kWh", E, 160, 403),
       ("87 kWh", E, 178, 533), since=2022),
    # Mazda
    _m("Mazda", "2 Hybrid", HB, 5, 24900, ("1.5 Hybrid", H, 85)),
    _m("Mazda", "3", HB, 5, 33900, ("e-SkyActiv-G 2.0", B, 110)),
    _m("Mazda", "CX-30", SUV, 5, 35900, ("e-SkyActiv-G 2.0", B, 110),
       ("e-SkyActiv-X 2.0", B, 137)),
    _m("Mazda", "MX-30", SUV, 5, 35900, ("e-SkyActiv EV", E, 107, 200)),
    _m("Mazda", "CX-60", SUV, 5, 56900, ("2.5 e-SkyActiv PHEV AWD", H, 241),
       since=2022),
    # MG
    _m("MG", "4", HB, 5, 31900, ("Standard Range 51 kWh", E, 125, 350),
       ("Long Range 64 kWh", E, 150, 435)),
    _m("MG", "ZS EV", SUV, 5, 31900, ("Long Range 72 kWh", E, 115, 440)),
    _m("MG", "5 Electric", SW, 5, 33900, ("Long Range 61 kWh", E, 115, 400)),
    _m("MG", "HS", SUV, 5, 35900, ("1.5 TGDI PHEV", H, 190)),
    _m("Mini", "Cooper", HB, 3, 31900, ("C", B, 115), ("SE", E, 160, 402)),
    _m("Mini", "Countryman", SUV, 5, 42900, ("C", B, 125), ("E", E, 150, 462)),
    _m("Lynk & Co", "01", SUV, 5, 42900, ("1.5 PHEV", H, 192)),
    # Others
    _m("Dacia", "Sandero", HB, 5, 17900, ("TCe 90", B, 67)),
    _m("Dacia", "Jogger", MPV, 5, 24900, ("TCe 110", B, 81), ("Hybrid 140", H, 104),
       seven=True),
    _m("Dacia", "Spring", HB, 5, 17900, ("Electric 45", E, 33, 225)),
    _m("Dacia", "Duster", SUV, 5, 25900, ("TCe 130", B, 96), since=2024),
    _m("Fiat", "500e", HB, 3, 29900, ("42 kWh", E, 87, 321)),
    _m("Fiat", "600e", SUV, 5, 36900, ("54 kWh", E, 115, 409), since=2024),
    _m("BYD", "Atto 3", SUV, 5, 38900, ("60,5 kWh", E, 150, 420), since=2023),
    _m("BYD", "Dolphin", HB, 5, 32900, ("60,4 kWh", E, 150, 427), since=2023),
    _m("BYD", "Seal", SD, 4, 44900, ("82,5 kWh RWD", E, 230, 570), since=2024),
    _m("Jeep", "Avenger", SUV, 5, 36900, ("54 kWh", E, 115, 400), since=2023),
    _m("Lexus", "UX", SUV, 5, 44900, ("300h", H, 146)),
    _m("Lexus", "NX", SUV, 5, 62900, ("350h", H, 179), ("450h+ AWD", H, 227)),
    _m("Suzuki", "Swift", HB, 5, 19900, ("1.2 Smart Hybrid", B, 61)),
    _m("Suzuki", "Vitara", SUV, 5, 29900, ("1.4 Boosterjet Smart Hybrid", B, 95)),
    _m("Honda", "Civic", HB, 5, 39900, ("2.0 e:HEV", H, 135), since=2022),
    _m("Honda", "e:Ny1", SUV, 5, 45900, ("68,8 kWh", E, 150, 412), since=2023),
    _m("Smart", "#1", SUV, 5, 41900, ("Pro+ 66 kWh", E, 200, 440), since=2023),
)
# fmt: on

TRIMS: dict[str, tuple[str, ...]] = {
    "BMW": ("Business Edition", "Executive Edition", "High Executive", "M Sport"),
    "Audi": ("Business edition", "Advanced edition", "S edition"),
    "Mercedes-Benz": ("Business Solution", "Luxury Line", "AMG Line"),
    "Volkswagen": ("Life", "Business", "Style", "R-Line"),
    "Skoda": ("Business Edition", "Style", "Sportline"),
    "Seat": ("Style", "FR", "Xcellence"),
    "Cupra": ("Business", "Performance", "VZ"),
    "Kia": ("DynamicLine", "DynamicPlusLine", "ExecutiveLine", "GT-Line"),
    "Hyundai": ("Comfort", "Premium", "N Line", "Lounge"),
    "Toyota": ("Active", "Dynamic", "Executive", "GR-Sport"),
    "Peugeot": ("Active", "Allure", "GT"),
    "Renault": ("Evolution", "Techno", "Esprit Alpine", "Iconic"),
    "Citroën": ("Feel", "Shine", "Max"),
    "Opel": ("Edition", "GS", "Ultimate", "Elegance"),
    "Ford": ("Titanium", "ST-Line", "Active"),
    "Tesla": ("",),
    "Volvo": ("Core", "Plus", "Ultimate"),
    "Polestar": ("", "Plus", "Pilot"),
    "Nissan": ("Acenta", "N-Connecta", "Tekna"),
    "Mazda": ("Centre-Line", "Exclusive-Line", "Homura", "Takumi"),
    "MG": ("Comfort", "Luxury"),
    "Mini": ("Classic", "Favoured", "John Cooper Works"),
    "Lynk & Co": ("",),
    "Dacia": ("Expression", "Extreme", "Journey"),
    "Fiat": ("La Prima", "RED"),
    "BYD": ("Comfort", "Design", "Boost"),
}
DEFAULT_TRIMS = ("Business", "Comfort", "Executive")

# Dutch colour name (`details.color`) -> weight, and manufacturer names for it
# (`details.officialColor`, e.g. "Mineralweiß" in the real sample).
COLOURS: dict[str, tuple[int, tuple[str, ...]]] = {
    "Grijs": (
        30,
        (
            "Moonstone Grey",
            "Graphite Grey",
            "Platinum Grey",
            "Gris Artense",
            "Magnetic Grey",
            "Mineralgrau",
        ),
    ),
    "Zwart": (
        25,
        (
            "Saphirschwarz",
            "Deep Black Pearl",
            "Midnight Black",
            "Noir Perla Nera",
            "Obsidian Black",
            "Solid Black",
        ),
    ),
    "Wit": (
        18,
        (
            "Mineralweiß",
            "Alpinweiß",
            "Pure White",
            "Glacier White",
            "Blanc Nacré",
            "Snow White Pearl",
        ),
    ),
    "Blauw": (
        12,
        (
            "Portimao Blue",
            "Atlantic Blue",
            "Kingfisher Blue",
            "Bleu Celebes",
            "Deep Sea Blue",
        ),
    ),
    "Zilver": (
        8,
        ("Reflex Silver", "Brilliant Silver", "Aluminium Silver", "Sleek Silver"),
    ),
    "Rood": (5, ("Kings Red", "Flame Red", "Rouge Elixir", "Soul Red Crystal")),
    "Groen": (2, ("British Racing Green", "Kings Green", "Olive Green")),
}

SPARE_WHEELS = ("oppompset", "bandenreparatieset", "thuiskomer", "reservewiel")

# Option names of the real API, alphabetical as it sends them, with the chance that a
# generated vehicle has the option (`included`). "Derde zitrij" only on seven-seaters.
OPTIONS: tuple[tuple[str, float], ...] = (
    ("Airconditioning", 1.0),
    ("Armsteun voor", 0.8),
    ("Automatisch dimmende binnenspiegel", 0.6),
    ("Bluetooth (telefoon)", 0.98),
    ("Carplay", 0.85),
    ("Cruise control", 0.95),
    ("Derde zitrij", 0.5),
    ("Fietsendrager", 0.05),
    ("LED/Xenon verlichting", 0.6),
    ("Lichtmetalen velgen", 0.85),
    ("Metallic lak", 0.75),
    ("Mistlampen voor", 0.5),
    ("Navigatie via app", 0.3),
    ("Navigatiesysteem", 0.8),
    ("Panoramadak", 0.2),
    ("Parkeersensor achter", 0.9),
    ("Parkeersensor voor", 0.6),
    ("Privacy glass", 0.4),
    ("Trekhaak", 0.25),
)

# Bijtelling (addition percentage) of an electric car by first registration year; it
# stays fixed for 60 months. Every other fuel pays the standard 22 %.
ELECTRIC_ADDITION_BY_YEAR = {
    2019: 4.0,
    2020: 8.0,
    2021: 12.0,
    2022: 16.0,
    2023: 16.0,
    2024: 16.0,
    2025: 17.0,
}
STANDARD_ADDITION = 22.0

# Dutch licence plate letters: no vowels, no C or Q; combinations to avoid.
PLATE_LETTERS = "BDFGHJKLNPRSTVXZ"
PLATE_FORBIDDEN = ("SS", "SD", "PKK", "NSB", "PVV", "GVD", "KKK", "TBS", "VVD")
