"""One model, three tasks: neural prediction, behaviour decoding and neural forecasting.

The multi-task twin (:mod:`twinlab.model.multitask`, trained by
:func:`twinlab.train.multitask.train_multitask`) answers each task by masking inputs; the
neural-prediction path stays :func:`twinlab.scan` / :func:`twinlab.train.evaluate`. Here:

* :mod:`~twinlab.tasks.decode`: :func:`decode_behavior`, running speed, pupil and gaze from
  activity, with and without the stimulus, against a ridge decoder and chance;
* :mod:`~twinlab.tasks.forecast`: :func:`forecast_activity`, activity ``horizon_s`` ahead from
  its past, against a linear autoregressive forecaster and the last value;
* :mod:`~twinlab.tasks.baselines`: the specialists (closed-form ridge, linear AR, last value);
* :mod:`~twinlab.tasks.report`: tables, plots, and :func:`compare_tasks` (the multi-task twin
  against the specialists, the prediction-only twin included, on the same splits).

>>> result = decode_behavior("runs/mt/model.safetensors", "mouse1.zarr")
>>> write_decoding(result, "decode/")              # decoding.csv, decoding.png, decoding.nc
>>> result = forecast_activity("runs/mt/model.safetensors", "mouse1.zarr", horizon_s=0.5)
"""

from .baselines import LinearAR, Ridge, RidgeDecoder, history_features, last_value
from .decode import DECODE_CONDITIONS, decode_behavior
from .forecast import FORECAST_CONDITIONS, forecast_activity
from .report import (compare_tasks, comparison_figure, decoding_figure, decoding_table, forecast_figure, forecast_table,
                     write_comparison, write_decoding, write_forecast)

__all__ = [
    "DECODE_CONDITIONS",
    "FORECAST_CONDITIONS",
    "LinearAR",
    "Ridge",
    "RidgeDecoder",
    "compare_tasks",
    "comparison_figure",
    "decode_behavior",
    "decoding_figure",
    "decoding_table",
    "forecast_activity",
    "forecast_figure",
    "forecast_table",
    "history_features",
    "last_value",
    "write_comparison",
    "write_decoding",
    "write_forecast",
]
