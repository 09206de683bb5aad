"""Login, profile, tax rates and the personalised prices of a logged-in member."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from athlon_flex_client.models.tax_rate import TaxRate, TaxRates

from simulation.fake_api import (
    SESSION_COOKIE,
    TAX_RATES_PAGE_ID,
    FakeShowroom,
    MemberAccount,
    contribution_per_month,
    net_cost_per_month,
)
from tests.support.fake_api import FAKE_PASSWORD, FAKE_USERNAME

CREDENTIALS = {"username": FAKE_USERNAME, "password": FAKE_PASSWORD}


@contextmanager
def logged_in_client(server: FakeShowroom) -> Iterator[httpx.Client]:
    """An HTTP client holding the session cookie of a fresh login."""
    with httpx.Client(base_url=server.url) as http:
        http.post("/MemberLogin", json=CREDENTIALS).raise_for_status()
        yield http


def test_login_with_the_configured_credentials_sets_a_session_cookie(
    fake_api: FakeShowroom,
) -> None:
    response = httpx.post(f"{fake_api.url}/MemberLogin", json=CREDENTIALS)

    assert response.status_code == 200
    assert SESSION_COOKIE in response.cookies
    assert "HttpOnly" in response.headers["set-cookie"]


@pytest.mark.parametrize(
    "body",
    [
        {"username": FAKE_USERNAME, "password": "wrong"},
        {"username": "other@example.com", "password": FAKE_PASSWORD},
    ],
)
def test_login_with_wrong_credentials_is_refused(
    fake_api: FakeShowroom, body: dict[str, str]
) -> None:
    response = httpx.post(f"{fake_api.url}/MemberLogin", json=body)

    assert response.status_code == 401
    assert SESSION_COOKIE not in response.cookies


def test_login_without_a_json_body_is_a_bad_request(fake_api: FakeShowroom) -> None:
    response = httpx.post(f"{fake_api.url}/MemberLogin", content=b"user=x")

    assert response.status_code == 400


def test_a_server_without_an_account_refuses_every_login(fake_api_factory) -> None:
    server = fake_api_factory(username=None, password=None)

    response = httpx.post(f"{server.url}/MemberLogin", json=CREDENTIALS)

    assert response.status_code == 401


def test_profile_needs_a_live_session(fake_api: FakeShowroom) -> None:
    assert httpx.get(f"{fake_api.url}/MemberProfile").status_code == 401
    with logged_in_client(fake_api) as http:
        assert http.get("/MemberProfile").json()["email"] == FAKE_USERNAME

        fake_api.expire_sessions()

        assert http.get("/MemberProfile").status_code == 401


def test_profile_shows_the_account_budget(fake_api_factory) -> None:
    account = MemberAccount(FAKE_USERNAME, FAKE_PASSWORD, actual_budget_per_month=700.0)
    server = fake_api_factory(account=account)

    with logged_in_client(server) as http:
        budget = http.get("/MemberProfile").json()["budget"]

    assert budget["actualBudgetPerMonth"] == 700.0
    assert budget["maxBudgetPerMonth"] == account.max_budget_per_month


@pytest.mark.parametrize("apply_credit", [True, False])
@pytest.mark.parametrize(
    "income", [1, 15_000, 28_406, 38_441.0, 38_442, 60_000, 100_000, 250_000]
)
def test_every_income_falls_in_exactly_one_tax_bracket(
    fake_api: FakeShowroom, income: float, apply_credit: bool
) -> None:
    response = httpx.get(
        f"{fake_api.url}/TaxRates", params={"pageId": TAX_RATES_PAGE_ID}
    )
    rates = TaxRates(tax_rates=[TaxRate(**rate) for rate in response.json()])

    matching = [
        rate
        for rate in rates.tax_rates
        if rate.is_for_income(income, apply_loonheffingskorting=apply_credit)
    ]

    assert len(matching) == 1
    assert 30 < matching[0].percentage < 60


def test_tax_rates_need_the_known_page_id(fake_api: FakeShowroom) -> None:
    url = f"{fake_api.url}/TaxRates"
    assert httpx.get(url).status_code == 400
    assert httpx.get(url, params={"pageId": "something-else"}).status_code == 404


def test_logged_in_vehicle_has_contribution_and_with_tax_cookies_net_cost(
    fake_api: FakeShowroom,
) -> None:
    vehicle = max(fake_api.catalog.vehicles, key=lambda v: v.calculated_price)
    params = {"Segment": "Cars", "VehicleId": vehicle.id}
    account = fake_api.account
    assert account is not None

    with logged_in_client(fake_api) as http:
        plain = http.get("/Vehicle", params=params).json()["pricing"]
        # aiohttp's cookie jar sends the label raw in UTF-8, euro signs included.
        cookie_header = (
            f"{SESSION_COOKIE}={http.cookies[SESSION_COOKIE]}; TaxGroup=37.48; "
            'TaxGroupLabel="Zonder loonheffingskorting jaarinkomen € 38.442 t/m '
            '€ 76.817"'
        )
        taxed = http.get(
            "/Vehicle", params=params, headers={"Cookie": cookie_header.encode()}
        ).json()["pricing"]
        budget = http.get(
            "/Vehicle", params={**params, "ActualBudgetPerMonth": 500}
        ).json()["pricing"]

    budget_per_month = account.actual_budget_per_month
    assert plain["contributionInEuro"] == contribution_per_month(
        vehicle, budget_per_month
    )
    assert "netCostPerMonthInEuro" not in plain
    assert taxed["netCostPerMonthInEuro"] == net_cost_per_month(
        vehicle, budget_per_month, 37.48
    )
    assert budget["contributionInEuro"] == round(vehicle.calculated_price - 500, 2)


def test_anonymous_vehicle_has_neither_contribution_nor_net_cost(
    fake_api: FakeShowroom,
) -> None:
    vehicle = fake_api.catalog.vehicles[0]

    pricing = httpx.get(
        f"{fake_api.url}/Vehicle",
        params={"VehicleId": vehicle.id},
        cookies={"TaxGroup": "37.48"},
    ).json()["pricing"]

    assert "contributionInEuro" not in pricing
    assert "netCostPerMonthInEuro" not in pricing


def test_a_vehicle_not_leasable_by_the_profile_is_404_only_when_logged_in(
    fake_api: FakeShowroom,
) -> None:
    vehicle = fake_api.catalog.set_leasable(fake_api.catalog.vehicles[0].id, False)
    params = {"Segment": "Cars", "VehicleId": vehicle.id}

    with logged_in_client(fake_api) as http:
        assert http.get("/Vehicle", params=params).status_code == 404
    anonymous = httpx.get(f"{fake_api.url}/Vehicle", params=params)

    assert anonymous.status_code == 200
    assert anonymous.json()["details"]["licensePlate"] == vehicle.license_plate
