"""What each endpoint answers: request in, status and JSON bytes out (no sockets here).

Kept apart from the HTTP transport so the API's behaviour reads as a list of endpoint
functions. Like ASP.NET, paths and query parameter names are case-insensitive.

Responses are cached as encoded bytes because a loader run asks for the same data many
times (thousands of requests per test run): catalog-wide answers per catalog version,
a vehicle's detail for as long as the catalog holds that exact vehicle value.

Prices are always quoted for the default 1000 km a month; the real API recomputes them
for a profile's mileage and tax settings, which is not simulated.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from simulation.fake_api.catalog import Catalog, CatalogSnapshot, group_by_cluster
from simulation.fake_api.encoding import encode
from simulation.fake_api.faults import ENDPOINTS
from simulation.fake_api.members import (
    SESSION_COOKIE,
    TAX_RATES,
    TAX_RATES_PAGE_ID,
    MemberAccount,
    Sessions,
)
from simulation.fake_api.shapes import (
    CLUSTER_DECIMALS,
    DETAIL_DECIMALS,
    SUMMARY_DECIMALS,
    cluster_json,
    problem_json,
    profile_json,
    tax_rates_json,
    vehicle_detail,
    vehicle_summary,
)
from simulation.fake_api.tampering import Tampering, apply_changes
from simulation.fake_api.vehicle import Vehicle

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
JSON_TYPE = "application/json; charset=utf-8"
PROBLEM_TYPE = "application/problem+json; charset=utf-8"
UNKNOWN_ENDPOINT = "unknown"
_ENDPOINT_BY_PATH = {f"{API_PREFIX}/{name}".lower(): name for name in ENDPOINTS}
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_CACHE_LIMIT = 50_000


def resolve_endpoint(path: str) -> str:
    """The endpoint name of a URL path ("unknown" when the API has no such path)."""
    return _ENDPOINT_BY_PATH.get(path.rstrip("/").lower(), UNKNOWN_ENDPOINT)


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """A parsed request: query parameter names lower-cased, last value wins."""

    method: str
    path: str
    params: Mapping[str, str] = field(default_factory=dict)
    cookies: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def endpoint(self) -> str:
        """The endpoint name the path resolves to."""
        return resolve_endpoint(self.path)

    def param(self, name: str) -> str | None:
        """A query parameter by case-insensitive name."""
        return self.params.get(name.lower())


@dataclass(frozen=True, slots=True)
class ApiResponse:
    """Status, body bytes and extra headers of an answer."""

    status: int
    body: bytes
    content_type: str = JSON_TYPE
    headers: tuple[tuple[str, str], ...] = ()


class BadRequest(Exception):
    """A parameter is missing or malformed: answered with 400 and the reason."""


def problem(status: int, detail: str | None = None, **headers: str) -> ApiResponse:
    """An error answer in ASP.NET problem-details form."""
    return ApiResponse(
        status,
        encode(problem_json(status, detail)),
        PROBLEM_TYPE,
        tuple(headers.items()),
    )


def _float_param(request: ApiRequest, name: str) -> float | None:
    raw = request.param(name)
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except ValueError:
        raise BadRequest(f"The value '{raw}' is not valid for {name}.") from None


def _is_cars(request: ApiRequest, name: str) -> bool:
    """Only the Cars segment has stock (bikes exist in the real app, not here)."""
    return (request.param(name) or "Cars").lower() == "cars"


class ShowroomApi:
    """The six endpoints of the showroom API over one catalog and one member."""

    def __init__(
        self,
        catalog: Catalog,
        account: MemberAccount | None,
        sessions: Sessions,
        tampering: Tampering | None = None,
    ) -> None:
        self.catalog = catalog
        self.account = account
        self.sessions = sessions
        self.tampering = tampering if tampering is not None else Tampering()
        self._cache: dict[Any, Any] = {}
        self._routes: dict[str, tuple[str, Callable[[ApiRequest], ApiResponse]]] = {
            "VehicleCluster": ("GET", self._vehicle_clusters),
            "VehicleVariation": ("GET", self._vehicle_variations),
            "Vehicle": ("GET", self._vehicle),
            "TaxRates": ("GET", self._tax_rates),
            "MemberLogin": ("POST", self._member_login),
            "MemberProfile": ("GET", self._member_profile),
        }

    def handle(self, request: ApiRequest) -> ApiResponse:
        """Answer one request; never raises (a bug becomes a logged 500)."""
        route = self._routes.get(request.endpoint)
        if route is None:
            return problem(404, f"No endpoint at {request.path}")
        method, handler = route
        if request.method != method:
            return problem(405, f"{request.endpoint} accepts {method}", Allow=method)
        try:
            return handler(request)
        except BadRequest as error:
            return problem(400, str(error))
        except Exception:
            log.exception("Simulated API failed on %s %s", request.method, request.path)
            return problem(500, "The simulated showroom failed; see its log.")

    # --- helpers -------------------------------------------------------------------

    def logged_in(self, request: ApiRequest) -> bool:
        """Whether the request carries a live session cookie."""
        return self.account is not None and self.sessions.is_valid(
            request.cookies.get(SESSION_COOKIE)
        )

    def _cached(self, key: Any, build: Callable[[], bytes]) -> bytes:
        body = self._cache.get(key)
        if body is None:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            body = self._cache[key] = build()
        return body

    @staticmethod
    def _ok(body: bytes) -> ApiResponse:
        return ApiResponse(200, body)

    # --- endpoints -----------------------------------------------------------------

    def _vehicle_clusters(self, request: ApiRequest) -> ApiResponse:
        """`GET VehicleCluster`: one entry per make+model that has stock."""
        snapshot = self.catalog.snapshot()
        cars = _is_cars(request, "Filters.Segment")
        make = (request.param("Filters.Make") or "").lower()
        max_price = _float_param(request, "Filters.MaxPricePerMonth")
        key = ("clusters", snapshot.version, cars, make, max_price)

        def build() -> bytes:
            vehicles = self._filtered(snapshot, cars, make, "", max_price)
            clusters = [cluster_json(group) for group in group_by_cluster(vehicles)]
            return encode(clusters, CLUSTER_DECIMALS)

        return self._ok(self._cached(key, build))

    def _vehicle_variations(self, request: ApiRequest) -> ApiResponse:
        """`GET VehicleVariation`: the vehicle summaries of one make+model."""
        snapshot = self.catalog.snapshot()
        cars = _is_cars(request, "Filters.Segment")
        make = (request.param("Filters.Make") or "").lower()
        model = (request.param("Filters.Model") or "").lower()
        max_price = _float_param(request, "Filters.MaxPricePerMonth")
        sort_by = (request.param("Filters.SortBy") or "").lower()
        tampering = self.tampering
        if tampering.claim_empty(make, model):
            return self._ok(b"[]")
        key = (
            "variations",
            snapshot.version,
            tampering.version,
            cars,
            make,
            model,
            max_price,
            sort_by,
        )

        def build() -> bytes:
            vehicles = self._filtered(snapshot, cars, make, model, max_price)
            if sort_by.lstrip("-") == "priceineuro":
                vehicles.sort(
                    key=lambda v: v.calculated_price, reverse=sort_by.startswith("-")
                )
            summaries = [
                listed
                for vehicle in vehicles
                for listed in tampering.summaries(vehicle_summary(vehicle))
            ]
            return encode(summaries, SUMMARY_DECIMALS)

        return self._ok(self._cached(key, build))

    @staticmethod
    def _filtered(
        snapshot: CatalogSnapshot,
        cars: bool,
        make: str,
        model: str,
        max_price: float | None,
    ) -> list[Vehicle]:
        if not cars:
            return []
        return [
            vehicle
            for vehicle in snapshot.vehicles
            if (not make or vehicle.make.lower() == make)
            and (not model or vehicle.model.lower() == model)
            and (max_price is None or vehicle.calculated_price <= max_price)
        ]

    def _vehicle(self, request: ApiRequest) -> ApiResponse:
        """`GET Vehicle`: the full car; personalised when logged in.

        404 for a car not in stock, and for a logged-in member when the car is not
        leasable by their profile (the same car answers anonymously).
        """
        vehicle_id = request.param("VehicleId")
        if not vehicle_id:
            raise BadRequest("The VehicleId field is required.")
        if not _GUID.match(vehicle_id):
            raise BadRequest(f"The value '{vehicle_id}' is not valid for VehicleId.")
        vehicle = self.catalog.snapshot().by_id.get(vehicle_id.lower())
        if vehicle is None or not _is_cars(request, "Segment"):
            return problem(404, f"Vehicle {vehicle_id} not found")
        budget = tax = None
        if self.logged_in(request):
            if not vehicle.leasable:
                return problem(404, f"Vehicle {vehicle_id} is not leasable for you")
            assert self.account is not None
            budget = _float_param(request, "ActualBudgetPerMonth")
            if budget is None:
                budget = self.account.actual_budget_per_month
            tax = _tax_percentage(request.cookies)
        changes = self.tampering.detail_changes(vehicle.id)
        if changes:
            detail = vehicle_detail(
                vehicle, budget_per_month=budget, tax_percentage=tax
            )
            return self._ok(encode(apply_changes(detail, changes), DETAIL_DECIMALS))
        key = ("vehicle", vehicle.id, budget, tax)
        cached = self._cache.get(key)
        if cached is not None and cached[0] is vehicle:
            return self._ok(cached[1])
        body = encode(
            vehicle_detail(vehicle, budget_per_month=budget, tax_percentage=tax),
            DETAIL_DECIMALS,
        )
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = (vehicle, body)
        return self._ok(body)

    def _tax_rates(self, request: ApiRequest) -> ApiResponse:
        """`GET TaxRates`: the brackets, for the page id the web app uses."""
        page_id = request.param("pageId")
        if not page_id:
            raise BadRequest("The pageId field is required.")
        if page_id.lower() != TAX_RATES_PAGE_ID:
            return problem(404, f"No tax rates on page {page_id}")
        return self._ok(
            self._cached("tax_rates", lambda: encode(tax_rates_json(TAX_RATES)))
        )

    def _member_login(self, request: ApiRequest) -> ApiResponse:
        """`POST MemberLogin` {username, password}: a session cookie or 401."""
        try:
            credentials = json.loads(request.body or b"null")
        except ValueError:
            raise BadRequest("The request body is not valid JSON.") from None
        if not isinstance(credentials, dict):
            raise BadRequest("Expected a JSON object with username and password.")
        username, password = credentials.get("username"), credentials.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            raise BadRequest("username and password are required.")
        account = self.account
        if (
            account is None
            or username.lower() != account.username.lower()
            or not secrets.compare_digest(password.encode(), account.password.encode())
        ):
            log.info("MemberLogin refused for %s", username)
            return problem(401, "Invalid username or password.")
        token = self.sessions.create()
        cookie = f"{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax"
        return ApiResponse(200, b"{}", headers=(("Set-Cookie", cookie),))

    def _member_profile(self, request: ApiRequest) -> ApiResponse:
        """`GET MemberProfile`: the logged-in member's profile, else 401."""
        if not self.logged_in(request):
            return problem(401, "Log in first (POST MemberLogin).")
        assert self.account is not None
        return self._ok(encode(profile_json(self.account)))


def _tax_percentage(cookies: Mapping[str, str]) -> float | None:
    """The member's tax rate from the `TaxGroup` cookie the client sets (or None)."""
    raw = cookies.get("TaxGroup")
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        log.warning("Ignoring TaxGroup cookie %r: not a percentage", raw)
        return None
