"""LibreOffice conversion bridge. Runs under Debian's /usr/bin/python3 (which has `uno`), not the venv.

Protocol on stdin/stdout, one JSON object per line:
  -> {"in": "/abs/file.docx", "out": "/abs/file.pdf"}
  <- {"ok": true} | {"ok": false, "error": "..."}
The first line written is {"ready": true} once soffice accepts connections. Standard library + uno only.
"""

import json
import os
import subprocess
import sys
import time

import uno
from com.sun.star.beans import PropertyValue


def prop(name, value):  # type: ignore[no-untyped-def]
    p = PropertyValue()
    p.Name, p.Value = name, value
    return p


def main() -> None:
    soffice, pipe_name, profile = sys.argv[1], sys.argv[2], sys.argv[3]
    office = subprocess.Popen(
        [soffice, "--headless", "--invisible", "--nologo", "--norestore", "--nodefault", "--nolockcheck",
         f"-env:UserInstallation=file://{profile}",
         f"--accept=pipe,name={pipe_name};urp;StarOffice.ComponentContext"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
    ctx = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            ctx = resolver.resolve(f"uno:pipe,name={pipe_name};urp;StarOffice.ComponentContext")
            break
        except Exception:
            if office.poll() is not None:
                break
            time.sleep(0.1)
    if ctx is None:
        print(json.dumps({"ready": False, "error": "soffice did not start"}), flush=True)
        office.kill()
        sys.exit(1)
    desktop = ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
    print(json.dumps({"ready": True, "pid": office.pid}), flush=True)
    filter_data = uno.Any("[]com.sun.star.beans.PropertyValue", tuple([
        prop("EmbedStandardFonts", True), prop("UseTaggedPDF", False), prop("ExportFormFields", False),
    ]))
    for line in sys.stdin:
        try:
            req = json.loads(line)
            doc = desktop.loadComponentFromURL(uno.systemPathToFileUrl(os.path.abspath(req["in"])), "_blank", 0,
                                               (prop("Hidden", True), prop("ReadOnly", True)))
            if doc is None:
                raise RuntimeError("LibreOffice could not open the document")
            try:
                doc.storeToURL(uno.systemPathToFileUrl(os.path.abspath(req["out"])),
                               (prop("FilterName", "writer_pdf_Export"), prop("FilterData", filter_data)))
            finally:
                doc.close(True)
            print(json.dumps({"ok": True}), flush=True)
        except Exception as exc:  # report and keep serving; the parent decides whether to restart
            print(json.dumps({"ok": False, "error": str(exc)[:500]}), flush=True)
    office.terminate()
    try:
        office.wait(10)
    except subprocess.TimeoutExpired:
        office.kill()


if __name__ == "__main__":
    main()
