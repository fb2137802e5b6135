"""The registry of forecasting methods: name -> class. Adding a method is one ``@register`` class.

A method follows statsforecast's small model classes: ``Method(season_length).fit(y, lens).predict(h)`` returns
a :class:`~.panel.PanelForecast` for every series of the panel at once. Its declared attributes tell the pipeline
how to use it, so ``forecast_panel`` has no per-method branches.
"""
from __future__ import annotations

import numpy as np

from .panel import ForecastInputError, PanelForecast, Provenance

REGISTRY: dict[str, type["Method"]] = {}


class Method:
    """Base class of a forecasting method.

    name          SQL spelling (``method := 'name'``).
    yearly_aware  fitted on data with the yearly (Fourier) pattern removed, the pattern added back after.
    fallback      method for series shorter than :meth:`min_length` (labelled ``name->fallback (short: n periods)``).
    min_series    a global model's smallest panel; a smaller one gets ``fallback_panel`` (and says so).
    in_auto       a candidate of ``auto``'s selection, so backtest_demand compares it with auto by default.
    takes_drivers learns from drivers (features, holidays, events: a ``Drivers`` as ``config``).
    """

    name = "method"
    yearly_aware = False
    fallback = "naive"
    in_auto = False
    takes_drivers = False
    needs: tuple[str, ...] = ()  # passed to fit besides y and lens: panel fields ("start",) or "yearly"
    min_series = 1  # fewer series in the panel: every series gets ``fallback_panel`` instead
    fallback_panel = "auto"

    def __init__(self, season_length: int = 1):
        if not isinstance(season_length, (int, np.integer)) or season_length < 1:
            raise ForecastInputError("season_length", f"must be a positive integer, got {season_length!r}",
                                     "Pass e.g. 7 for daily data with a weekly pattern")
        self.m = int(season_length)

    @classmethod
    def min_length(cls, freq: str, m: int, h: int, lens: np.ndarray, config=None) -> int:
        """Shortest series this method fits (shorter ones get ``fallback``)."""
        return 3

    @classmethod
    def check_available(cls) -> None:
        """Raise when a dependency is missing (an error, not a silent fallback)."""

    @classmethod
    def check_config(cls, config) -> None:
        """Raise when ``config`` (the method's settings or drivers) cannot be used (before any series is fitted,
        so the error reaches the user instead of a fallback)."""

    @classmethod
    def create(cls, m: int, freq: str = "daily", level: float = 0.95, config=None) -> "Method":
        """An instance for a panel of frequency ``freq`` and season ``m`` (``config``: method-specific settings)."""
        return cls(m)

    def fit(self, y, lens=None):
        raise NotImplementedError

    def predict(self, h: int) -> PanelForecast:
        raise NotImplementedError

    @staticmethod
    def _check_h(h):
        if not isinstance(h, (int, np.integer)) or h < 1:
            raise ForecastInputError("horizon", f"must be a positive whole number, got {h!r}", "Pass e.g. 7")


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: make ``cls`` reachable as ``method := cls.name``."""
    REGISTRY[cls.name] = cls
    return cls


def method_class(name: str) -> type[Method]:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ForecastInputError("method", f"unknown method {name!r}",
                                 f"Use one of {', '.join(method_names())}") from None


def method_names() -> tuple[str, ...]:
    return tuple(REGISTRY)


def is_yearly_aware(made: Provenance) -> bool:
    """Whether every method that produced a forecast removes the yearly pattern (``auto``'s own candidates such
    as ``log_ets`` are not registered methods and do not)."""
    return all(name in REGISTRY and REGISTRY[name].yearly_aware for name in made.methods)


def fit_predict(name: str, Y0: np.ndarray, lens: np.ndarray, m: int, h: int, yearly=None, **create) -> PanelForecast:
    """Fit method ``name`` on a panel and forecast ``h`` steps; a yearly-aware method is fitted on data with
    ``yearly.pattern`` removed and gets ``yearly.future`` added back. ``create``: ``freq``, ``level``,
    ``config`` and the panel fields the method ``needs``."""
    cls = method_class(name)
    extra = {k: yearly if k == "yearly" else create.pop(k) for k in cls.needs}
    mask = np.arange(Y0.shape[1])[None, :] < lens[:, None]
    adjust = yearly is not None and cls.yearly_aware
    X = Y0 - yearly.pattern if adjust else Y0
    fc = cls.create(m, **create).fit(np.where(mask, X, np.nan), lens, **extra).predict(h)
    if adjust:
        fc.mean = fc.mean + yearly.future(lens, h)
    return fc
