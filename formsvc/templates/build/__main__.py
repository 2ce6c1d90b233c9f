from pathlib import Path

from formsvc.templates.build.forms import build_all

for path in build_all(Path(__file__).resolve().parents[1]):
    print(path)
