"""One settings object, read from FORMSVC_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FORMSVC_", extra="ignore")

    data_dir: Path = Field(default=Path("data"), description="Root for the SQLite file and file store")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite under data_dir")
    redis_url: str = "redis://127.0.0.1:6379/0"
    file_store_dir: Path | None = None
    criteria_dirs: list[Path] = Field(
        default_factory=list, description="Extra folders of criteria-set YAML files, loaded after the built-in ones"
    )

    # Limits: bad input must fail fast with a clear message, never exhaust the machine.
    max_upload_bytes: int = 50 * 1024 * 1024
    max_pages_per_file: int = 1200
    max_image_pixels: int = 60_000_000
    max_json_bytes: int = 5 * 1024 * 1024
    rate_limit_per_minute: int = 600

    # Rendering
    soffice_path: str = "soffice"
    convert_timeout_s: float = 120.0
    convert_restart_after: int = 200
    convert_queue_max: int = 8

    # Extraction
    raster_dpi: int = 200
    review_confidence: float = 0.80

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'formsvc.db').resolve()}"

    @property
    def resolved_file_store_dir(self) -> Path:
        return self.file_store_dir or (self.data_dir / "files")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
