"""The data folder's own configuration: `oppwh.yml` and user mappings in `mappings/`.

Both are optional. `oppwh.yml` holds the one-line settings users need for their source,
for example the Salesforce custom field that holds the loss reason::

    salesforce:
      loss_reason_field: Why_We_Lost__c
    quality:
      max_days_without_export: 3     # the freshness check warns after this many days
    notify:                          # a failed or blocked run posts here
      webhook_url: https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...
      format: wecom                  # wecom (企业微信) | dingtalk (钉钉) | slack | json
    reminders:                       # after a good run: each owner's action items
      webhook: https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...
      format: wecom                  # wecom | dingtalk | feishu | slack
      stale_days: 14                 # an A or B deal untouched this long needs a follow-up
      language: zh                   # zh | en
      secret: ...                    # DingTalk / Feishu signing, optional
    forecast:
      backtest_months: 6             # past months whose forecast is checked against the wins
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from ingestion.files import MAX_WORKBOOK_MB
from ingestion.formats import builtin_formats
from ingestion.formats.mapping_file import MappingFileError, load_mappings
from ingestion.load import LoadSettings
from warehouse.layout import CONFIG_FILE, MAPPINGS_FOLDER
from warehouse.settings import DEFAULT_CURRENCY, DEFAULT_TIMEZONE, valid_currency, valid_timezone
from warehouse.user_settings import SettingsModel, validated
from warehouse.user_yaml import UserYamlError, load_yaml_file


@dataclass(frozen=True)
class DataFolderConfig:
    salesforce_loss_reason_fields: tuple[str, ...] = ()
    max_days_without_export: int = 3
    webhook_url: str | None = None
    webhook_format: str = "json"
    # A landing file is taken once unchanged for this many seconds (oppwh.yml
    # landing.settle_seconds, else OPPWH_SETTLE_SECONDS, else 2).
    settle_seconds: float = 2.0
    max_workbook_mb: float = MAX_WORKBOOK_MB
    timezone: str = DEFAULT_TIMEZONE
    currency: str = DEFAULT_CURRENCY
    # Per source system: (name, timezone or None, currency or None).
    sources: tuple[tuple[str, str | None, str | None], ...] = ()
    reminders: RemindersSection | None = None
    # Complete months before the as-of month whose forecast is made again from what was
    # known at their start and set against what was won (marts.forecast_accuracy).
    forecast_backtest_months: int = 6

    def timezone_for(self, source_system: str) -> str:
        """Where a source's timestamps without a zone are local time."""
        return next((tz for s, tz, _ in self.sources if s == source_system and tz), self.timezone)

    def currency_for(self, source_system: str) -> str:
        return next((c for s, _, c in self.sources if s == source_system and c), self.currency)

    def source_timezones(self) -> dict[str, str]:
        return {s: tz for s, tz, _ in self.sources if tz}

    def source_currencies(self) -> dict[str, str]:
        return {s: c for s, _, c in self.sources if c}

    @property
    def reminder_stale_days(self) -> int:
        """Days without a touch after which an A or B deal is an action item."""
        return self.reminders.stale_days if self.reminders else RemindersSection().stale_days


def default_settle_seconds() -> float:
    """The settle interval when oppwh.yml names none (read when asked, not at import)."""
    return float(os.environ.get("OPPWH_SETTLE_SECONDS", DataFolderConfig.settle_seconds))


WEBHOOK_FORMATS = ("wecom", "dingtalk", "slack", "json")


class Place(SettingsModel):
    """`timezone:` and `currency:` of the folder, or of one source under `sources:`."""

    timezone: str | None = None
    currency: str | None = None

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None and not valid_timezone(value):
            raise ValueError(
                f"{value!r} is not a time zone name "
                "(IANA names such as America/New_York, Europe/Berlin, Asia/Tokyo, UTC)"
            )
        return value

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, value) -> str | None:
        if value is None:
            return None
        code = str(value).strip().upper()
        if not valid_currency(code):
            raise ValueError(f"{value!r} is not a 3-letter ISO code (USD, EUR, CNY …)")
        return code


class SalesforceSection(SettingsModel):
    loss_reason_field: str | list[str] | None = None
    loss_reason_fields: str | list[str] | None = None

    def fields(self) -> tuple[str, ...]:
        value = self.loss_reason_field or self.loss_reason_fields or ()
        return (value,) if isinstance(value, str) else tuple(value)


class QualitySection(SettingsModel):
    max_days_without_export: int = Field(3, ge=0)


class NotifySection(SettingsModel):
    webhook_url: str | None = None
    format: str = "json"

    @field_validator("format", mode="before")
    @classmethod
    def _format(cls, value) -> str:
        text = str(value).lower()
        if text not in WEBHOOK_FORMATS:
            raise ValueError(f"must be wecom, dingtalk, slack or json, not {text!r}")
        return text


class RemindersSection(SettingsModel):
    """`reminders:`: where each owner's action items go after a successful run."""

    webhook: str | None = None
    format: Literal["wecom", "dingtalk", "feishu", "slack"] = "wecom"
    stale_days: int = Field(14, ge=1)
    language: Literal["zh", "en"] = "zh"
    secret: str | None = None
    # Deals listed in one owner's message before "and N more" (the chat's size limit may
    # cut the list shorter).
    max_deals: int = Field(10, ge=1, le=50)
    # Every message of a run within this many seconds: a slow chat never holds the run.
    deadline_seconds: float = Field(20, gt=0, le=300)


class ForecastSection(SettingsModel):
    """`forecast:`: how far back the forecast is checked against what was won."""

    backtest_months: int = Field(6, ge=1, le=36)


class LandingSection(SettingsModel):
    settle_seconds: float | None = None
    max_workbook_mb: float = MAX_WORKBOOK_MB

    @field_validator("settle_seconds", mode="before")
    @classmethod
    def _settle(cls, value):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 600
        ):
            raise ValueError("must be a number of seconds from 0 to 600")
        return value

    @field_validator("max_workbook_mb", mode="before")
    @classmethod
    def _workbook(cls, value):
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ValueError("must be a positive number of MB")
        return value


class OppwhFile(Place):
    """The whole of oppwh.yml; every section is optional."""

    salesforce: SalesforceSection = SalesforceSection()
    quality: QualitySection = QualitySection()
    notify: NotifySection = NotifySection()
    landing: LandingSection = LandingSection()
    reminders: RemindersSection = RemindersSection()
    forecast: ForecastSection = ForecastSection()
    sources: dict[str, Place] = {}


def read_config(data_dir: Path) -> DataFolderConfig:
    """The data folder's oppwh.yml, validated (MappingFileError names the file and key)."""
    path = data_dir / CONFIG_FILE
    if not path.exists():
        return DataFolderConfig(settle_seconds=default_settle_seconds())
    try:
        data = load_yaml_file(path)
    except UserYamlError as exc:
        raise MappingFileError(str(exc)) from exc
    file = validated(OppwhFile, data, str(path), MappingFileError)
    settle = file.landing.settle_seconds
    return DataFolderConfig(
        file.salesforce.fields(),
        file.quality.max_days_without_export,
        file.notify.webhook_url,
        file.notify.format,
        float(default_settle_seconds() if settle is None else settle),
        float(file.landing.max_workbook_mb),
        file.timezone or DEFAULT_TIMEZONE,
        file.currency or DEFAULT_CURRENCY,
        tuple((str(name), p.timezone, p.currency) for name, p in file.sources.items()),
        file.reminders,
        file.forecast.backtest_months,
    )


def load_settings(data_dir: Path, as_of: date, business_tz: str | None = None) -> LoadSettings:
    """LoadSettings with the built-in formats, the folder's config and its user mappings;
    `business_tz` (oppwh run --timezone) overrides the folder's time zone."""
    config = read_config(data_dir)
    return LoadSettings(
        max_workbook_mb=config.max_workbook_mb,
        as_of=as_of,
        business_tz=business_tz or config.timezone,
        source_timezones=config.source_timezones(),
        formats=builtin_formats(config.salesforce_loss_reason_fields),
        user_formats=load_mappings(data_dir / MAPPINGS_FOLDER),
    )
