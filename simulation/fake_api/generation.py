"""Seeded generation of realistic vehicles for the simulated showroom.

Everything random flows from one `random.Random(seed)`, and no value depends on the
clock (ages are measured from `REFERENCE_DATE`), so the same seed always gives the same
catalog. Identifiers that belong to a kind of thing rather than to one car (a type, a
paint, an option) are derived from names with uuid5, so they are stable across seeds,
like the real API's shared ids.
"""

from __future__ import annotations

import hashlib
import random
import re
import struct
import unicodedata
import uuid
from dataclasses import replace
from datetime import date, timedelta

from simulation.fake_api.reference_data import (
    BODY_CODES,
    COLOURS,
    DEFAULT_TRIMS,
    ELECTRIC_ADDITION_BY_YEAR,
    MODELS,
    OPTIONS,
    PLATE_FORBIDDEN,
    PLATE_LETTERS,
    SPARE_WHEELS,
    STANDARD_ADDITION,
    TRIMS,
    EngineSpec,
    FuelType,
    ModelSpec,
)
from simulation.fake_api.vehicle import KM_PER_MONTH, Option, Vehicle

# "Today" for the generated catalog: registration dates and mileages are measured from
# here, never from the clock, so a seed means the same catalog on every day.
REFERENCE_DATE = date(2025, 6, 1)

IMAGE_BASE = "https://services.athlon.com/api/photos/imagin/v2"
_NAMESPACE = uuid.UUID("6f1d2c3e-5b4a-4e8f-9a7b-1c2d3e4f5a6b")

# Dutch sidecodes (L = letter, 9 = digit) used for cars of these registration years.
_SIDECODES_BY_YEAR = (
    (2020, ("LL-999-L", "L-999-LL")),
    (2022, ("L-999-LL", "LLL-99-L")),
    (2099, ("LLL-99-L", "L-99-LLL", "9-LLL-99")),
)


def stable_guid(*parts: str) -> str:
    """A GUID that only depends on the given names (shared ids such as types)."""
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def slug(text: str) -> str:
    """The imagin image service's path form of a make or model ("3_serie_touring")."""
    ascii_text = (
        unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    )
    return re.sub(r"[^a-z0-9.\-#]+", "_", ascii_text).strip("_")


def float32(value: float) -> float:
    """The value as .NET serialises a C# float: 6.7 comes out as 6.69999980926514."""
    single = struct.unpack("<f", struct.pack("<f", value))[0]
    return float(f"{single:.15g}")


def amsterdam_midnight(day: date) -> str:
    """Midnight UTC of `day` in Amsterdam time, as the API writes registration dates.

    Central European (Summer) Time: +02:00 from the last Sunday of March until the last
    Sunday of October, +01:00 otherwise (computed, so no tz database is needed).
    """

    def last_sunday(month: int) -> date:
        last = date(day.year, month + 1, 1) - timedelta(days=1)
        return last - timedelta(days=(last.weekday() + 1) % 7)

    summer = last_sunday(3) < day <= last_sunday(10)
    offset = 2 if summer else 1
    return f"{day.isoformat()}T{offset:02d}:00:00+{offset:02d}:00"


def _paint_code(make: str, official_color: str) -> str:
    """Manufacturer-style paint code, the same for every car of that make and paint."""
    digest = hashlib.sha256(f"{make}/{official_color}".encode()).hexdigest().upper()
    return f"P0{digest[:3]}"


OPTION_IDS: dict[str, tuple[str, str]] = {
    name: (stable_guid("option", name), stable_guid("option-external", name))
    for name, _ in OPTIONS
}


# Body styles and editions that turn a known model into another cluster.
MODEL_VARIANT_SUFFIXES = (
    "Touring",
    "Sportback",
    "Cross",
    "Plus",
    "GT",
    "Sport",
    "Edition",
)


class VehicleFactory:
    """Makes new vehicles from one seeded random stream; plates and ids never repeat.

    The factory outlives catalog mutations: a vehicle added later continues the same
    stream, so a scenario is reproducible end to end from its seed.
    """

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._plates: set[str] = set()
        self._ids: set[str] = set()

    @property
    def rng(self) -> random.Random:
        """The shared random stream (the catalog also draws from it)."""
        return self._rng

    def pick_models(self, count: int) -> list[ModelSpec]:
        """`count` different makes+models (clusters) in a seeded order.

        Past the known models (benchmarks ask for 1,000 clusters), body-style
        variants of them ("Golf Touring", "Golf Sportback", ...) make more clusters,
        as the real showroom lists "3 Serie" and "3 Serie Touring" apart.
        """
        known = self._rng.sample(MODELS, min(count, len(MODELS)))
        known_keys = {spec.key for spec in MODELS}
        variants = [
            variant
            for suffix in MODEL_VARIANT_SUFFIXES
            for spec in MODELS
            if (variant := replace(spec, model=f"{spec.model} {suffix}")).key
            not in known_keys
        ]
        needed = count - len(known)
        if needed > len(variants):
            raise ValueError(
                f"The simulated showroom can make {len(MODELS) + len(variants)} "
                f"clusters; asked for {count}. Use more vehicles per cluster."
            )
        return known + variants[:needed]

    def find_model(self, make: str | None, model: str | None) -> ModelSpec:
        """The model spec for make/model; unknown combinations get a plausible spec.

        None for both picks any model at random (an existing or a new cluster).
        """
        if make is None and model is None:
            return self._rng.choice(MODELS)
        candidates = [
            spec
            for spec in MODELS
            if (make is None or spec.make.lower() == make.lower())
            and (model is None or spec.model.lower() == model.lower())
        ]
        if candidates:
            return self._rng.choice(candidates)
        if make is None or model is None:
            raise ValueError(
                f"No known model matches make={make!r}, model={model!r}; give both "
                "to invent a new make and model."
            )
        return ModelSpec(
            make=make,
            model=model,
            body_type="Hatchback",
            doors=5,
            list_price=39900,
            engines=(
                EngineSpec("1.5 Turbo", FuelType.BENZINE, 110),
                EngineSpec("Electric 64 kWh", FuelType.ELEKTRISCH, 150, 450),
            ),
        )

    def vehicle(
        self,
        spec: ModelSpec,
        *,
        calculated_price: float | None = None,
        leasable: bool = True,
    ) -> Vehicle:
        """One new car of this make and model, with a plate and id never used before."""
        rng = self._rng
        engine = rng.choice(spec.engines)
        trim_index = rng.randrange(len(TRIMS.get(spec.make, DEFAULT_TRIMS)))
        trim = TRIMS.get(spec.make, DEFAULT_TRIMS)[trim_index]
        type_ = " ".join(
            part
            for part in (engine.designation, trim, f"{spec.doors}D", f"{engine.kw}kW")
            if part
        )
        registered = self._registration_date(spec)
        model_year = registered.year if rng.random() < 0.85 else registered.year + 1
        model_year = min(model_year, REFERENCE_DATE.year)
        fuel = engine.fuel
        electric = fuel is FuelType.ELEKTRISCH

        colour, official = self._paint()
        external_paint_id = _paint_code(spec.make, official)
        body_code = f"{spec.doors}{BODY_CODES.get(spec.body_type, 'hb')}"
        make_slug, model_slug = slug(spec.make), slug(spec.model)
        image_uri = (
            f"{IMAGE_BASE}/image/[#width#]/01/{make_slug}/{model_slug}/{model_year}/"
            f"{body_code}/null/null/{external_paint_id}"
        )

        emission, consumption = self._emission_and_consumption(engine)
        months_old = max(
            1,
            (REFERENCE_DATE.year - registered.year) * 12
            + REFERENCE_DATE.month
            - registered.month,
        )
        mileage = float(round(months_old * rng.uniform(800, 2100)))

        base_kw = min(e.kw for e in spec.engines)
        fiscal = spec.list_price * (1 + 0.0035 * (engine.kw - base_kw))
        fiscal *= 1 + 0.05 * trim_index
        fiscal = float(round(fiscal * rng.uniform(0.97, 1.05)))

        price_per_km = rng.choice((0.07, 0.08, 0.09, 0.1, 0.11, 0.12))
        fuel_price_per_km = {
            FuelType.BENZINE: (0.11, 0.12, 0.13, 0.14),
            FuelType.DIESEL: (0.09, 0.1, 0.11),
            FuelType.HYBRIDE: (0.07, 0.08, 0.09, 0.1),
            FuelType.ELEKTRISCH: (0.04, 0.05, 0.06, 0.07),
        }[fuel]
        fuel_price_per_km = rng.choice(fuel_price_per_km)
        running = (price_per_km + fuel_price_per_km) * KM_PER_MONTH
        age_factor = 1 - 0.035 * max(0, REFERENCE_DATE.year - registered.year)
        base = float(round(fiscal * rng.uniform(0.0125, 0.0155) * age_factor / 5) * 5)
        if calculated_price is None:
            calculated = round(base + running, 2)
        else:
            calculated = round(float(calculated_price), 2)
            base = max(0.0, round(calculated - running, 2))

        options = tuple(
            Option(
                id=OPTION_IDS[name][0],
                external_id=OPTION_IDS[name][1],
                name=name,
                included=self._has_option(name, chance, spec, colour),
            )
            for name, chance in OPTIONS
        )
        return Vehicle(
            id=self._new_id(),
            make=spec.make,
            model=spec.model,
            type=type_,
            model_year=model_year,
            fuel=fuel,
            external_type_id=stable_guid("type", spec.make, spec.model, type_),
            paint_id=stable_guid("paint", spec.make, official),
            external_paint_id=external_paint_id,
            image_uri=image_uri,
            body_code=body_code,
            range_km=engine.range_km + rng.randrange(-10, 11) if electric else 0,
            license_plate=self._new_plate(registered.year),
            color=colour,
            official_color=official,
            body_type=spec.body_type,
            emission=emission,
            registration_date=amsterdam_midnight(registered),
            registered_mileage=mileage,
            transmission=self._transmission(engine),
            avg_fuel_consumption=consumption,
            spare_wheel="bandenreparatieset" if electric else rng.choice(SPARE_WHEELS),
            addition_percentage=(
                ELECTRIC_ADDITION_BY_YEAR.get(registered.year, STANDARD_ADDITION)
                if electric
                else STANDARD_ADDITION
            ),
            fiscal_value=fiscal,
            base_price=base,
            price_per_km=price_per_km,
            fuel_price_per_km=fuel_price_per_km,
            calculated_price=calculated,
            options=options,
            leasable=leasable,
        )

    def _registration_date(self, spec: ModelSpec) -> date:
        """A first registration between the model's launch and a month ago."""
        rng = self._rng
        first = date(max(spec.since, 2020), 1, 15)
        last = REFERENCE_DATE - timedelta(days=30)
        # Lease cars are young: weigh the last years more by taking the later of two.
        span = (last - first).days
        offset = max(rng.randrange(span + 1), rng.randrange(span + 1))
        return first + timedelta(days=offset)

    def _paint(self) -> tuple[str, str]:
        rng = self._rng
        names = list(COLOURS)
        colour = rng.choices(names, weights=[COLOURS[n][0] for n in names])[0]
        return colour, rng.choice(COLOURS[colour][1])

    def _emission_and_consumption(self, engine: EngineSpec) -> tuple[float, float]:
        """CO2 in g/km (float, as the API) and l/100 km or kWh/100 km (a C# float)."""
        rng = self._rng
        if engine.fuel is FuelType.ELEKTRISCH:
            return 0.0, float32(round(14.5 + engine.kw * 0.012 + rng.uniform(-1, 1), 1))
        if engine.fuel is FuelType.HYBRIDE:
            plug_in = engine.kw >= 130 or "PHEV" in engine.designation
            grams = rng.uniform(24, 42) if plug_in else 85 + engine.kw * 0.15
        elif engine.fuel is FuelType.DIESEL:
            grams = 95 + engine.kw * 0.3
        else:
            grams = 95 + engine.kw * 0.42
        grams = float(round(grams + rng.uniform(-6, 6)))
        per_litre = 26.4 if engine.fuel is FuelType.DIESEL else 23.2
        return grams, float32(round(grams / per_litre, 1))

    def _transmission(self, engine: EngineSpec) -> str:
        if engine.fuel in (FuelType.ELEKTRISCH, FuelType.HYBRIDE):
            return "Automatisch"
        if engine.designation.split()[0].endswith("A") or "DSG" in engine.designation:
            return "Automatisch"
        return "Automatisch" if self._rng.random() < 0.7 else "Handgeschakeld"

    def _has_option(
        self, name: str, chance: float, spec: ModelSpec, colour: str
    ) -> bool:
        if name == "Derde zitrij" and not spec.seven_seats:
            return False
        if name == "Metallic lak" and colour == "Wit":
            chance = 0.3
        return self._rng.random() < chance

    def _new_id(self) -> str:
        """A GUID shaped like the API's SQL Server sequential ids (...-08dc...)."""
        while True:
            bits = self._rng.getrandbits(96)
            hex_ = f"{bits:024x}"
            guid = (
                f"{hex_[:8]}-{hex_[8:12]}-{hex_[12:16]}-{hex_[16:20]}-08dc{hex_[20:24]}"
                f"{self._rng.getrandbits(16):04x}"
            )
            if guid not in self._ids:
                self._ids.add(guid)
                return guid

    def _new_plate(self, year: int) -> str:
        """A Dutch licence plate in a sidecode of that year, unique in this catalog."""
        rng = self._rng
        formats = next(f for until, f in _SIDECODES_BY_YEAR if year <= until)
        while True:
            plate = "".join(
                rng.choice(PLATE_LETTERS)
                if char == "L"
                else str(rng.randrange(10))
                if char == "9"
                else char
                for char in rng.choice(formats)
            )
            letters = "".join(c for c in plate if c.isalpha())
            forbidden = any(bad in letters for bad in PLATE_FORBIDDEN)
            if not forbidden and plate not in self._plates:
                self._plates.add(plate)
                return plate

    def reserve(self, vehicle: Vehicle) -> None:
        """Remember an outside vehicle's id and plate so new ones never collide."""
        self._ids.add(vehicle.id)
        self._plates.add(vehicle.license_plate)
