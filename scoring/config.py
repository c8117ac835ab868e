"""The scoring configuration: weights, target industries, grade cut-offs, write-back fields.

The shipped `scoring/scoring.yml` is the default; `DATA_DIR/scoring.yml` replaces it.
`model_version` is derived from the file's content, so any edit gives a new version.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, field_validator

from warehouse.user_settings import SettingsModel, validated
from warehouse.user_yaml import UserYamlError, load_yaml_text, read_settings_text

DEFAULT_CONFIG = Path(__file__).with_name("scoring.yml")
SIGNALS = (
    "target_industry",
    "account_size",
    "deal_amount",
    "repeat_customer",
    "industry_trend",
    "account_history",
    "recency",
    "frequency",
    "engagement_trend",
    "stage_progress",
    "time_in_stage",
    "regressions",
    "close_date_pushes",
)


class ScoringConfigError(ValueError):
    """The scoring YAML cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class ScoringConfig:
    mode: str
    weights: dict[str, float]
    target_industries: tuple[str, ...]
    grade_cutoffs: dict[str, float]
    trend_threshold: float
    horizon_days: int
    min_won: int
    min_lost: int
    writeback: dict[str, dict[str, str]]
    content_hash: str
    path: Path
    # The gate before write-back: grades are written for the CRM only when their backtest
    # is better than chance (AUC >= min_auc on >= min_closed_deals), unless "always".
    min_auc: float = 0.55
    min_closed_deals: int = 100
    writeback_gate: Literal["auto", "always"] = "auto"

    @property
    def model_version(self) -> str:
        return f"rules-{self.content_hash}"

    def writeback_fields(self, source_system: str, chinese: bool = True) -> dict[str, str]:
        """The source's own field names, else the default in the source's language."""
        if source_system in self.writeback:
            return self.writeback[source_system]
        if chinese or "default_en" not in self.writeback:
            return self.writeback["default"]
        return self.writeback["default_en"]


def config_path(data_dir: Path | None) -> Path:
    if data_dir is not None and (data_dir / "scoring.yml").exists():
        return data_dir / "scoring.yml"
    return DEFAULT_CONFIG


class Learned(SettingsModel):
    min_won: int = Field(200, ge=1)
    min_lost: int = Field(200, ge=1)


class Gate(SettingsModel):
    min_auc: float = Field(0.55, ge=0, le=1)
    min_closed_deals: int = Field(100, ge=0)


class Calibration(SettingsModel):
    horizon_days: int = Field(30, ge=0)


class ScoringFile(SettingsModel):
    """The whole of scoring.yml; every key is optional (the shipped file's values apply)."""

    mode: Literal["rules", "learned"] = "rules"
    learned: Learned = Learned()
    weights: dict[str, float] = {}
    target_industries: list[str] = []
    grades: dict[str, float] = {"A": 65, "B": 52, "C": 40}
    gate: Gate = Gate()
    writeback_gate: Literal["auto", "always"] = "auto"
    trend_threshold: float = 5
    calibration: Calibration = Calibration()
    writeback: dict[str, dict[str, str]] = {}

    @field_validator("weights", mode="before")
    @classmethod
    def _weights(cls, value):
        for name, weight in (value or {}).items():
            if name not in SIGNALS:
                raise ValueError(f"{name} is not a signal (known: {', '.join(SIGNALS)})")
            if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
                raise ValueError(f"{name} must be a number >= 0")
        return value

    @field_validator("grades", mode="before")
    @classmethod
    def _grades(cls, value):
        value = value or {"A": 65, "B": 52, "C": 40}
        if not value.get("A", 0) >= value.get("B", 0) >= value.get("C", 0):
            raise ValueError("must satisfy A >= B >= C")
        return value


def load_config(data_dir: Path | None = None) -> ScoringConfig:
    """The scoring configuration in force: DATA_DIR/scoring.yml, else the shipped one."""
    path = config_path(data_dir)
    try:
        text = read_settings_text(path)
        data = load_yaml_text(text, str(path)) or {}
    except UserYamlError as exc:
        raise ScoringConfigError(str(exc)) from exc
    file = validated(ScoringFile, data, str(path), ScoringConfigError)
    default = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))["writeback"]
    return ScoringConfig(
        mode=file.mode,
        weights={s: float(file.weights.get(s, 0)) for s in SIGNALS},
        target_industries=tuple(file.target_industries),
        grade_cutoffs={k: float(file.grades[k]) for k in ("A", "B", "C")},
        trend_threshold=float(file.trend_threshold),
        horizon_days=file.calibration.horizon_days,
        min_won=file.learned.min_won,
        min_lost=file.learned.min_lost,
        writeback={**default, **file.writeback},
        content_hash=hashlib.sha256(text.encode("utf-8")).hexdigest()[:10],
        path=path,
        min_auc=file.gate.min_auc,
        min_closed_deals=file.gate.min_closed_deals,
        writeback_gate=file.writeback_gate,
    )
