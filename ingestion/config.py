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

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from ingestion.formats import builtin_formats
from ingestion.formats.mapping_file import MappingFileError, load_mappings
from ingestion.load import LoadSettings

CONFIG_FILE = "oppwh.yml"
MAPPINGS_FOLDER = "mappings"


@dataclass(frozen=True)
class DataFolderConfig:
    salesforce_loss_reason_fields: tuple[str, ...] = ()
    max_days_without_export: int = 3
    webhook_url: str | None = None
    webhook_format: str = "json"


def read_config(data_dir: Path) -> DataFolderConfig:
    path = data_dir / CONFIG_FILE
    if not path.exists():
        return DataFolderConfig()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise MappingFileError(f"{path}: not valid YAML ({exc})") from exc
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
    return DataFolderConfig(
        tuple(fields),
        int(quality.get("max_days_without_export", 3)),
        notify.get("webhook_url"),
        webhook_format,
    )


def load_settings(data_dir: Path, as_of: date, business_tz: str) -> LoadSettings:
    """LoadSettings with the built-in formats, the folder's config and its user mappings."""
    config = read_config(data_dir)
    return LoadSettings(
        as_of=as_of,
        business_tz=business_tz,
        formats=builtin_formats(config.salesforce_loss_reason_fields),
        user_formats=load_mappings(data_dir / MAPPINGS_FOLDER),
    )
