"""Summary statistics of posted records with pandas, answered as plain JSON."""

import json
from typing import Any

import pandas as pd


def _plain(frame: pd.DataFrame) -> dict:
    """A frame as ``{column: {row: value}}`` with JSON types: numpy numbers become numbers, NaN null."""
    return json.loads(frame.to_json(orient='columns', double_precision=6))


class RecordStats:
    """Describes a table given as a list of records (one JSON object per row)."""

    def perform(self, records: list[dict[str, Any]], group_by: str | None = None) -> dict:
        """
        Describe the numeric columns of the records, as pandas' DataFrame.describe() does.
        :param records: The rows, e.g. [{"city": "Oslo", "temp": 3.5}, ...]; missing values are allowed.
        :param group_by: A column to group by: adds the mean of each numeric column per group.
        :return: The number of rows, the columns and their dtypes, describe() and the group means.
        """
        if not records:
            raise ValueError('give at least one record')
        frame = pd.DataFrame.from_records(records)
        numeric = frame.select_dtypes('number')
        if numeric.empty:
            raise ValueError(f'no numeric column among {list(frame.columns)}')
        summary = {
            'rows': len(frame),
            'dtypes': {column: str(dtype) for column, dtype in frame.dtypes.items()},
            'describe': _plain(numeric.describe()),
        }
        if group_by is not None:
            if group_by not in frame.columns:
                raise ValueError(f'no column {group_by!r} to group by; columns: {list(frame.columns)}')
            means = frame.groupby(group_by)[list(numeric.columns.drop(group_by, errors='ignore'))].mean()
            summary['mean_by_' + group_by] = _plain(means.T)
        return summary

    def docs_input_example(self) -> dict:
        return {
            'records': [
                {'city': 'Oslo', 'temp': 3.5, 'rain_mm': 2.0},
                {'city': 'Oslo', 'temp': 5.5, 'rain_mm': None},
                {'city': 'Rome', 'temp': 14.0, 'rain_mm': 0.0},
                {'city': 'Rome', 'temp': 16.0, 'rain_mm': 1.0},
            ],
            'group_by': 'city',
        }
