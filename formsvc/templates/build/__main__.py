"""`python -m formsvc.templates.build`: build the DOCX templates, keep each released version, measure zone data."""

from pathlib import Path

from formsvc.render.converter import get_converter
from formsvc.render.zonebuild import build_packaged_zones
from formsvc.templates.build.forms import build_all
from formsvc.templates.build.release import release_templates

folder = Path(__file__).resolve().parents[1]
for path in build_all(folder):
    print(path)
for path in release_templates(folder):
    print(path)
try:
    for path in build_packaged_zones(folder):
        print(path)
finally:
    get_converter().close()
