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
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from ingestion.files import MAX_WORKBOOK_MB
from ingestion.formats import builtin_formats
from ingestion.formats.mapping_file import MappingFileError, load_mappings
from ingestion.load import LoadSettings
from warehouse.layout import CONFIG_FILE, MAPPINGS_FOLDER
from warehouse.settings import DEFAULT_CURRENCY, DEFAULT_TIMEZONE, valid_currency, valid_timezone
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

    def timezone_for(self, source_system: str) -> str:
        """Where a source's timestamps without a zone are local time."""
        return next((tz for s, tz, _ in self.sources if s == source_system and tz), self.timezone)

    def currency_for(self, source_system: str) -> str:
        return next((c for s, _, c in self.sources if s == source_system and c), self.currency)

    def source_timezones(self) -> dict[str, str]:
        return {s: tz for s, tz, _ in self.sources if tz}

    def source_currencies(self) -> dict[str, str]:
        return {s: c for s, _, c in self.sources if c}


def default_settle_seconds() -> float:
    """The settle interval when oppwh.yml names none (read when asked, not at import)."""
    return float(os.environ.get("OPPWH_SETTLE_SECONDS", DataFolderConfig.settle_seconds))


def read_config(data_dir: Path) -> DataFolderConfig:
    path = data_dir / CONFIG_FILE
    if not path.exists():
        return DataFolderConfig(settle_seconds=default_settle_seconds())
    try:
        data = load_yaml_file(path) or {}
    except UserYamlError as exc:
        raise MappingFileError(str(exc)) from exc
    salesforce = data.get("salesforce") or {}
    fields = salesforce.get("loss_reason_field") or salesforce.get("loss_reason_fields") or ()
    if isinstance(fields, str):
        fields = (fields,)
    if not all(isinstance(f, str) for f in fields):
        raise MappingFileError(f"{path}: salesforce.loss_reason_field must be a field name")
    quality = data.get("quality") or {}
    notify = data.get("notify") or {}
    webhook_format = str(notify.get("format", "json")).lower()
    if webhook_format not in ("wecom", "dingtalk", "slack", "json"):
        raise MappingFileError(
            f"{path}: notify.format must be wecom, dingtalk, slack or json, not {webhook_format!r}"
        )
    landing = data.get("landing") or {}
    settle_seconds = landing.get("settle_seconds", default_settle_seconds())
    if not isinstance(settle_seconds, int | float) or not 0 <= settle_seconds <= 600:
        raise MappingFileError(
            f"{path}: landing.settle_seconds must be a number of seconds from 0 to 600"
        )
    max_workbook_mb = landing.get("max_workbook_mb", MAX_WORKBOOK_MB)
    if not isinstance(max_workbook_mb, int | float) or max_workbook_mb <= 0:
        raise MappingFileError(f"{path}: landing.max_workbook_mb must be a positive number of MB")
    timezone, currency = _place(data, path, "")
    sources = []
    for name, settings in (data.get("sources") or {}).items():
        if not isinstance(settings, dict):
            raise MappingFileError(f"{path}: sources.{name} must hold timezone: and/or currency:")
        tz, cur = _place(settings, path, f"sources.{name}.")
        sources.append((str(name), tz, cur))
    return DataFolderConfig(
        tuple(fields),
        int(quality.get("max_days_without_export", 3)),
        notify.get("webhook_url"),
        webhook_format,
        float(settle_seconds),
        float(max_workbook_mb),
        timezone or DEFAULT_TIMEZONE,
        currency or DEFAULT_CURRENCY,
        tuple(sources),
    )


def _place(data: dict, path: Path, prefix: str) -> tuple[str | None, str | None]:
    """`timezone:` and `currency:` of one level of oppwh.yml, checked (key named on error)."""
    timezone, currency = data.get("timezone"), data.get("currency")
    if timezone is not None and not valid_timezone(timezone):
        raise MappingFileError(
            f"{path}: {prefix}timezone {timezone!r} is not a time zone name "
            "(IANA names such as America/New_York, Europe/Berlin, Asia/Shanghai, UTC)"
        )
    if currency is not None:
        currency = str(currency).strip().upper()
        if not valid_currency(currency):
            raise MappingFileError(
                f"{path}: {prefix}currency {data.get('currency')!r} is not a 3-letter ISO code "
                "(USD, EUR, CNY …)"
            )
    return (str(timezone) if timezone is not None else None), currency


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
