"""Demand forecasting kernels: many series at once, in vectorised NumPy, no database import.

Pure NumPy in and out, so the same code runs inside a DuckDB UDF or a Spark ``mapInArrow``. One module per concern:

  ``panel``        the panel (left-aligned matrix of series), the forecast container, rows <-> panel, validation.
  ``registry``     name -> method class; a method declares how it is used (``min_length``, ``yearly_aware``, ...).
  ``ets``          exponential smoothing for every series at once.
  ``methods``      naive, seasonal naive (with drift), seasonal median, seasonal level, Theta, Croston/TSB, ARIMA.
  ``seasonality``  seasonal indices and the yearly (Fourier) adjustment of daily/weekly data.
  ``auto``         per-series selection on rolling origins.
  ``gbm``          one gradient-boosted model over all series, with drivers and holidays.
  ``xreg``         the drivers' multipliers from a pooled Poisson regression, the rest forecast by ``auto``.
  ``nn``           one neural network over all series (TensorFlow, imported only when used).
  ``explain``      forecasts taken apart into level, trend, season and yearly pattern.
  ``anomaly``      anomalies in history against a robust trend + season decomposition.
  ``pipeline``     forecast_panel (fallbacks, intervals, output rows), backtest_panel, reorder_quantities.

This module is the one place that imports every method module (each registers itself), so the registry is
complete once the package is imported.
"""
from __future__ import annotations

from .anomaly import Anomalies, detect_anomalies
from .auto import AutoForecaster
from .ets import ETS
from .explain import PARTS, Explanation, explain_global, explain_panel, explain_xreg
from .gbm import GBM, Drivers, holiday_days
from .methods import ARIMA, Croston, Naive, SeasonalDrift, SeasonalLevel, SeasonalMedian, SeasonalNaive, Theta
from .nn import NN, NNConfig
from .panel import (FREQS, MAX_HORIZON, ForecastInputError, Panel, PanelForecast, PanelResult, Provenance, period_dates,
                    period_index,
                    build_panel, infer_frequency, is_intermittent, mase_scale, seasonality_strength, validate_horizon,
                    validate_level)
from .pipeline import backtest_panel, forecast_panel, reorder_quantities
from .registry import REGISTRY, Method, method_names, register
from .seasonality import YearlyAdjust
from .xreg import Xreg

METHODS = method_names()

__all__ = ["ARIMA", "Anomalies", "AutoForecaster", "Croston", "ETS", "FREQS", "ForecastInputError", "MAX_HORIZON", "METHODS",
           "Drivers", "Explanation", "GBM", "Method", "NN", "PARTS", "NNConfig", "Naive", "Panel", "PanelForecast", "PanelResult", "Provenance", "REGISTRY", "SeasonalDrift", "SeasonalLevel", "SeasonalMedian", "SeasonalNaive",
           "Theta", "Xreg", "YearlyAdjust", "backtest_panel", "build_panel", "detect_anomalies", "explain_global", "explain_panel", "explain_xreg", "holiday_days", "period_dates", "period_index", "forecast_panel", "infer_frequency",
           "is_intermittent", "mase_scale", "method_names", "register", "reorder_quantities",
           "seasonality_strength", "validate_horizon", "validate_level"]
