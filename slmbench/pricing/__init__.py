"""Dated pricing sheets and cost arithmetic.

>>> from slmbench.pricing import load_pricebook, default_pricing_dirs, token_cost
>>> book = load_pricebook(default_pricing_dirs())
>>> price = book.lookup("openai/gpt-5.4-nano", datetime.date(2026, 11, 22))
>>> token_cost(price, tokens_in=100, tokens_out=5)

``commands`` (the CLI helpers, which use rich) is not imported here; import
``slmbench.pricing.commands`` where needed.
"""

from slmbench.pricing.check import check_pricing
from slmbench.pricing.cost import (
    CostSummary,
    applicable_tier,
    hourly_cost,
    summarize_costs,
    token_cost,
)
from slmbench.pricing.sheets import (
    CURRENCY,
    TOKEN_UNIT,
    HourlyRate,
    OffPeak,
    PriceBook,
    Problem,
    Sheet,
    Tier,
    TokenPrice,
    default_pricing_dirs,
    load_pricebook,
    parse_sheet_file,
)


def __getattr__(name: str):
    # lazy re-export of the CLI helpers so `import slmbench.pricing` stays light
    if name in ("list_sheets", "show_model", "run_check", "sheet_rows", "model_rows"):
        from slmbench.pricing import commands

        return getattr(commands, name)
    raise AttributeError(f"module 'slmbench.pricing' has no attribute {name!r}")


__all__ = [
    "CURRENCY",
    "TOKEN_UNIT",
    "CostSummary",
    "HourlyRate",
    "OffPeak",
    "PriceBook",
    "Problem",
    "Sheet",
    "Tier",
    "TokenPrice",
    "applicable_tier",
    "check_pricing",
    "default_pricing_dirs",
    "hourly_cost",
    "list_sheets",
    "load_pricebook",
    "model_rows",
    "parse_sheet_file",
    "run_check",
    "sheet_rows",
    "show_model",
    "summarize_costs",
    "token_cost",
]
