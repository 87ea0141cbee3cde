"""A forecasting job written in 2021 against numpy 1.19, pandas 1.1 and scikit-learn 0.24, which
run on Python 3.9 (fatman.yaml: python.python_version "3.9")."""

import platform

import numpy as np
import pandas as pd
import sklearn
from sklearn.linear_model import LinearRegression


class TrendForecast:
    """Extends a daily series along its linear trend."""

    def perform(self, series: dict[str, float], horizon: int = 3) -> dict[str, float]:
        """
        Forecast the next days of a daily series with a linear trend.
        :param series: Values by ISO date, e.g. {"2021-03-01": 10.0}; days may be missing (interpolated).
        :param horizon: How many days after the last one to forecast (1 to 366).
        :return: The forecast value of each following day, by ISO date, rounded to 3 decimals.
        """
        if len(series) < 2:
            raise ValueError('give at least two days')
        if not 1 <= horizon <= 366:
            raise ValueError('horizon must be between 1 and 366 days')
        observed = pd.Series(series, dtype='float64')
        observed.index = pd.to_datetime(observed.index)
        daily = observed.sort_index().resample('D').mean().interpolate(method='time')
        days = (daily.index - daily.index[0]).days.values.reshape(-1, 1)
        model = LinearRegression().fit(days, daily.values)
        future = pd.date_range(daily.index[-1] + pd.Timedelta(days=1), periods=horizon, freq='D')
        offsets = (future - daily.index[0]).days.values.reshape(-1, 1)
        forecast = np.round(model.predict(offsets), 3)
        return {day.strftime('%Y-%m-%d'): float(value) for day, value in zip(future, forecast)}

    def versions(self) -> dict[str, str]:
        """
        The Python and the libraries this job runs on.
        :return: Versions by name.
        """
        return {'python': platform.python_version(), 'numpy': np.__version__,
                'pandas': pd.__version__, 'scikit-learn': sklearn.__version__}

    def auxiliary_endpoints(self):
        return {'/versions': self.versions}

    def docs_input_examples(self) -> dict:
        return {
            '/perform': {'series': {'2021-03-01': 10.0, '2021-03-02': 12.0, '2021-03-04': 16.0},
                         'horizon': 2},
            '/versions': {},
        }
