"""One settings object, read from FORMSVC_* environment variables."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _system_tessdata() -> str:
    """The Debian package's model folder (tesseract-ocr-vie installs vie.traineddata there)."""
    if os.environ.get("TESSDATA_PREFIX"):
        return os.environ["TESSDATA_PREFIX"]
    found = sorted(Path("/usr/share/tesseract-ocr").glob("*/tessdata"))
    return str(found[-1]) if found else "/usr/share/tesseract-ocr/5/tessdata"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FORMSVC_", extra="ignore")

    data_dir: Path = Field(default=Path("data"), description="Root for the SQLite file and file store")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite under data_dir")
    redis_url: str = "redis://127.0.0.1:6379/0"
    file_store_dir: Path | None = None
    criteria_dirs: list[Path] = Field(
        default_factory=list, description="Extra folders of criteria-set YAML files, loaded after the built-in ones"
    )
    criteria_store_dir: Path | None = Field(
        default=None, description="Criteria sets accepted from official files, all versions; default data_dir/criteria")
    forms_dirs: list[Path] = Field(
        default_factory=list, description="Extra form folders (registry.yaml, DOCX, zone data), after the built-in")

    # Limits: bad input must fail fast with a clear message, never exhaust the machine.
    max_upload_bytes: int = 50 * 1024 * 1024
    max_pages_per_file: int = 1200
    max_image_pixels: int = 60_000_000
    max_json_bytes: int = 5 * 1024 * 1024
    max_files_per_upload: int = 500
    max_queued_jobs_per_unit: int = Field(
        default=300, description="Uploads are refused (503, retry later) while a unit has this many jobs waiting")
    rate_limit_per_minute: int = 600
    auth_failures_per_minute: int = Field(
        default=30, description="Wrong keys / failed logins from one client address per minute before 429")
    max_json_depth: int = Field(
        default=64, description="Nesting depth of a JSON body (a record needs 4); deeper is refused with 422")
    max_form_pages: int = Field(
        default=50, description="Pages a formsvc form's QR code may claim; a larger count is a forged code")
    max_roster_rows: int = Field(default=10_000, description="Rows read from a roster (CSV or XLSX)")
    max_roster_columns: int = Field(default=64, description="Columns read from a roster")
    max_roster_unpacked_bytes: int = Field(
        default=20 * 1024 * 1024, description="An XLSX roster's size once unzipped (a zip bomb is refused)")
    max_pack_forms: int = Field(default=3_000, description="Forms in one print pack")
    page_time_budget_s: float = Field(
        default=30.0, description="Seconds to rasterise and read one PDF page; slower is a page error (0 = none)")
    page_memory_budget_mb: int = Field(
        default=768, description="Memory one PDF page may take to rasterise and read; more is a page error (0 = none)")
    worker_memory_mb: int = Field(
        default=4096, description="Address space of the process running one job (rq work horse); 0 = no limit")

    roster_max_files: int = Field(
        default=50, ge=0, description="Newest print-pack rosters of a unit whose people are matched to scanned forms")
    crosscheck_max_stored_sheets: int = Field(
        default=20_000, ge=0, description="Stored self-assessments of a unit and year the minutes are checked against")

    # Rendering
    soffice_path: str = "soffice"
    uno_python: str = Field(default="/usr/bin/python3",
                            description="Python with LibreOffice's `uno` module (Debian: python3-uno), runs the bridge")
    convert_timeout_s: float = 120.0
    convert_start_timeout_s: float = Field(default=60.0, description="LibreOffice must be ready within this")
    convert_restart_after: int = 200
    convert_queue_max: int = 8

    # Extraction
    raster_dpi: int = 200
    tessdata_dir: str = Field(default_factory=_system_tessdata, description="Folder with vie/eng.traineddata")
    review_confidence: float = 0.80
    extract_jobs: int = Field(default=1, description="Page processes per extraction job inside a worker")

    # Service
    db_busy_timeout_s: float = 5.0
    workers: int = Field(default=2, description="rq worker processes started by `formsvc up`")
    queue_name: str = "formsvc"
    job_stale_s: float = Field(default=60.0, description="A running job silent this long is retried")
    job_max_attempts: int = 3
    job_timeout_s: int = Field(default=6 * 3600, ge=60, description="rq kills a job's work horse after this long")
    job_result_ttl_s: int = Field(default=3600, description="rq keeps a finished job's entry this long (Redis)")
    job_failure_ttl_s: int = Field(default=7 * 86400, description="rq keeps a failed job's entry this long (Redis)")
    worker_warm_up: bool = Field(default=True,
                                 description="Workers load the Tesseract models before forking their work horses")
    api_key_header: str = "X-API-Key"
    idempotency_pending_s: float = Field(
        default=300.0, description="An Idempotency-Key whose request died this long ago may be retried")
    idempotency_ttl_s: float = Field(
        default=24 * 3600.0, description="Stored answers for Idempotency-Key replays are kept this long")
    public_url: str = Field(default="http://127.0.0.1:8000",
                            description="Address users reach; https here makes the login cookie Secure")
    session_ttl_s: float = Field(default=12 * 3600.0, description="A web UI login lasts this long")

    # Webhooks
    webhook_max_attempts: int = 10
    webhook_backoff_base_s: float = 2.0
    webhook_backoff_max_s: float = 600.0
    webhook_timeout_s: float = 10.0
    webhook_allow_private: bool = Field(
        default=False, description="Allow webhook targets on loopback/private networks (tests, closed LANs)")
    webhook_batch: int = Field(default=20, ge=1, le=500,
                               description="Deliveries one dispatcher claims per turn (its lease is sized to them)")
    webhook_parallel: int = Field(default=4, ge=1, le=64,
                                  description="Subscriptions one dispatcher sends to at the same time")
    dispatch_interval_s: float = 0.5

    # Logs
    log_format: Literal["text", "json"] = Field(default="text", description="json: one JSON object per line")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    health_timeout_s: float = Field(default=2.0, description="Each check of GET /v1/health gives up after this")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'formsvc.db').resolve()}"

    @property
    def resolved_file_store_dir(self) -> Path:
        return self.file_store_dir or (self.data_dir / "files")

    @property
    def resolved_criteria_store_dir(self) -> Path:
        return self.criteria_store_dir or (self.data_dir / "criteria")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
