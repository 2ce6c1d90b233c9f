/* formsvc web UI behaviour: plain JavaScript, no libraries, nothing loaded from elsewhere.
 *
 * Pages are rendered by the server; this file only adds what needs a script: downloads with error messages,
 * uploads with progress, polling of background jobs, and the review screen (live total, save, approve, delete).
 * Every change goes through the JSON API with the session cookie (HttpOnly; it never holds the key) and the
 * page's CSRF token from <meta name="csrf-token">.
 * Text from the server is always inserted with textContent, never as HTML.
 */
(function () {
  "use strict";

  var POLL_MS = 700;
  var MAX_POLL_FAILURES = 8; // a worker restart or a brief network loss should not end the progress display
  var SCAN_TYPES = ["pdf", "jpg", "jpeg", "png", "tif", "tiff", "heic", "heif", "avif", "webp"];
  var STATUS_LABELS = { valid: "Hợp lệ", needs_review: "Cần kiểm tra", rejected: "Không hợp lệ" };

  // -- small helpers -------------------------------------------------------------------------------------

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }
  function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "className") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }

  /** "7,5" or "7.5" -> 7.5; "" -> null; anything else -> NaN (shown as an error, never sent). */
  function parseVn(text) {
    var t = String(text == null ? "" : text).replace(/\s+/g, "");
    if (t === "") return null;
    if (!/^[+-]?\d+(?:[.,]\d+)?$/.test(t)) return NaN;
    return Number(t.replace(",", "."));
  }

  function fmtVn(n) {
    if (n === null || n === undefined || Number.isNaN(n)) return "";
    return String(Math.round(n * 100) / 100).replace(".", ",");
  }

  function fmtSize(bytes) {
    if (bytes < 1024 * 1024) return fmtVn(Math.max(1, Math.round(bytes / 1024))) + " KB";
    return fmtVn(Math.round(bytes / 1024 / 1024 * 10) / 10) + " MB";
  }

  // -- talking to the API --------------------------------------------------------------------------------

  function ApiError(message, status, code, hint) {
    this.message = message;
    this.status = status;
    this.code = code || "";
    this.hint = hint || "";
  }
  ApiError.prototype = Object.create(Error.prototype);

  /** The API's JSON error {code, message, hint?} as an ApiError; a Vietnamese fallback when there is none. */
  function errorFrom(status, data) {
    if (status === 401) {
      return new ApiError("Phiên đăng nhập đã hết hạn hoặc khóa đã bị thu hồi.", status, data && data.code,
        "Hãy tải lại trang và đăng nhập lại.");
    }
    if (data && typeof data.message === "string") return new ApiError(data.message, status, data.code, data.hint);
    var fallback = {
      413: "Dữ liệu gửi lên quá lớn.",
      429: "Có quá nhiều yêu cầu; hãy đợi một chút rồi thử lại.",
      502: "Máy chủ tạm thời không trả lời; hãy thử lại sau ít phút.",
      503: "Hệ thống đang bận; hãy thử lại sau ít phút.",
      504: "Máy chủ trả lời quá lâu; hãy thử lại."
    }[status];
    return new ApiError(fallback || "Yêu cầu không thực hiện được (mã " + status + ").", status);
  }

  function networkError() {
    return new ApiError("Không kết nối được với máy chủ.", 0, "network", "Kiểm tra kết nối mạng rồi thử lại.");
  }

  /** The page's CSRF token: the API refuses changes made with the session cookie without it. */
  function csrfToken() {
    var meta = document.querySelector("meta[name='csrf-token']");
    return meta ? meta.getAttribute("content") : "";
  }

  async function api(method, url, body) {
    var init = { method: method, credentials: "same-origin",
                 headers: { Accept: "application/json", "X-CSRF-Token": csrfToken() } };
    if (body instanceof FormData) {
      init.body = body;
    } else if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    var res;
    try {
      res = await fetch(url, init);
    } catch (e) {
      throw networkError();
    }
    if (res.ok) return res;
    var data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    throw errorFrom(res.status, data);
  }

  async function apiJson(method, url, body) {
    var res = await api(method, url, body);
    return res.json();
  }

  /** Multipart POST with upload progress (fetch cannot report it), resolving to the JSON body. */
  function postWithProgress(url, formData, onProgress) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("X-CSRF-Token", csrfToken());
      xhr.upload.onprogress = function (e) { if (e.lengthComputable) onProgress(e.loaded / e.total); };
      xhr.onload = function () {
        var data = null;
        try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
        if (xhr.status >= 200 && xhr.status < 300 && data) resolve(data);
        else reject(errorFrom(xhr.status, data));
      };
      xhr.onerror = function () { reject(networkError()); };
      xhr.send(formData);
    });
  }

  function showMessage(box, kind, message, hint) {
    if (!box) return;
    box.className = "alert alert-" + kind;
    box.textContent = message;
    if (hint) box.appendChild(el("span", { className: "hint", text: hint }));
    box.hidden = false;
  }

  function showError(box, err) {
    showMessage(box, "error", err.message || "Có lỗi xảy ra.", err.hint);
  }

  // A write refused because someone changed the record meanwhile gets the hint to reload; other errors their own.
  function showWriteError(box, err, conflictHint) {
    if (err.code === "version_conflict") showMessage(box, "error", err.message, conflictHint);
    else showError(box, err);
  }

  function setBusy(button, busy, busyText) {
    if (!button) return;
    if (busy) {
      button.dataset.label = button.textContent;
      button.textContent = busyText;
      button.disabled = true;
      button.classList.add("is-busy");
    } else {
      if (button.dataset.label) button.textContent = button.dataset.label;
      button.disabled = false;
      button.classList.remove("is-busy");
    }
  }

  // -- background jobs -----------------------------------------------------------------------------------

  function role(panel, name) { return panel.querySelector('[data-role="' + name + '"]'); }

  function renderProgress(panel, job) {
    var p = job.progress || { pages_done: 0, pages_total: 0, percent: 0 };
    var bar = role(panel, "bar");
    role(panel, "status").textContent = job.status_label || job.status;
    var pages = role(panel, "pages");
    if (job.status === "queued") pages.textContent = "Đang chờ đến lượt xử lý…";
    // A dossier job counts documents, the others pages.
    else if (p.pages_total) pages.textContent = p.pages_done + "/" + p.pages_total +
      (job.kind === "dossier" ? " văn bản · " : " trang · ") + p.percent + "%";
    else pages.textContent = job.status === "done" ? "100%" : "Đang mở tệp…";
    bar.value = job.status === "done" ? 100 : p.percent;
    bar.classList.toggle("is-done", job.status === "done");
    bar.classList.toggle("is-failed", job.status === "failed");
    panel.dataset.status = job.status;
  }

  /** Poll a job until it is done or failed, rendering each state; resolves to the final job. */
  async function followJob(panel, job) {
    var failures = 0;
    renderProgress(panel, job);
    while (job.status !== "done" && job.status !== "failed") {
      await sleep(POLL_MS);
      try {
        job = await apiJson("GET", "/v1/jobs/" + encodeURIComponent(job.id));
        failures = 0;
      } catch (err) {
        failures += 1;
        if (err.status === 401 || err.status === 403 || err.status === 404 || failures >= MAX_POLL_FAILURES) throw err;
        continue;
      }
      renderProgress(panel, job);
    }
    return job;
  }

  /** Per-page errors of an upload, or skipped roster rows of a print pack (same shape: file, page, message).
   *  Roster rows have no page (the message names the row), so that column is left out for them. */
  function problemsTable(errors, title, withPage) {
    var wrap = el("div", { className: "problems" }, [el("h3", { text: title + " (" + errors.length + ")" })]);
    var head = [el("th", { text: "Tệp" }), withPage ? el("th", { text: "Trang" }) : null, el("th", { text: "Nội dung" })];
    var tbody = el("tbody");
    errors.forEach(function (e) {
      tbody.appendChild(el("tr", {}, [
        el("td", { "data-label": "Tệp", text: e.file || "" }),
        withPage ? el("td", { "data-label": "Trang", text: e.page == null ? "cả tệp" : String(e.page) }) : null,
        el("td", { "data-label": "Nội dung", text: e.message || e.code || "" })
      ]));
    });
    wrap.appendChild(el("table", { className: "table table-cards problems-table" }, [
      el("thead", {}, [el("tr", {}, head)]), tbody
    ]));
    return wrap;
  }

  // -- forms page: blank downloads -----------------------------------------------------------------------

  function initDownloads() {
    var box = $("#download-error");
    $all("form.js-download").forEach(function (form) {
      form.addEventListener("submit", async function (e) {
        e.preventDefault();
        var button = form.querySelector("button");
        if (box) box.hidden = true;
        setBusy(button, true, "Đang tạo…");
        try {
          var res = await api("POST", form.getAttribute("action"), {});
          var blob = await res.blob();
          var url = URL.createObjectURL(blob);
          var a = el("a", { href: url, download: form.dataset.filename || "bieu-mau" });
          document.body.appendChild(a);
          a.click();
          a.remove();
          setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
        } catch (err) {
          showError(box, err);
        } finally {
          setBusy(button, false);
        }
      });
    });
  }

  // -- forms page: print packs ---------------------------------------------------------------------------

  function initPrintPack() {
    var form = $("#pack-form");
    var panel = $("#pack-job");
    if (!form || !panel) return;
    form.addEventListener("submit", async function (e) {
      e.preventDefault();
      var button = form.querySelector('button[type="submit"]');
      var errorBox = role(panel, "error");
      var roster = $("#pack-roster");
      var unit = $("#pack-unit");
      panel.hidden = false;
      errorBox.hidden = true;
      role(panel, "result").hidden = true;
      role(panel, "problems").textContent = "";
      if (!roster.files.length) {
        showMessage(errorBox, "error", "Hãy chọn tệp danh sách (CSV hoặc XLSX).");
        return;
      }
      if (unit && !unit.value.trim()) {
        showMessage(errorBox, "error", "Hãy ghi tên đơn vị.");
        unit.focus();
        return;
      }
      var data = new FormData(form);
      if (!String(data.get("year") || "").trim()) data.delete("year");
      setBusy(button, true, "Đang gửi…");
      try {
        var job = await apiJson("POST", "/v1/print-packs", data);
        job = await followJob(panel, job);
        if (job.status === "failed") {
          showMessage(errorBox, "error", (job.error && job.error.message) || "Không tạo được tệp in.");
        } else if (job.result_url) {
          var link = role(panel, "result-link");
          link.href = job.result_url;
          link.setAttribute("download", "");
          role(panel, "result").hidden = false;
        }
        if (job.errors && job.errors.length) {
          role(panel, "problems").appendChild(problemsTable(job.errors, "Dòng trong danh sách bị bỏ qua", false));
        }
      } catch (err) {
        showError(errorBox, err);
      } finally {
        setBusy(button, false);
      }
    });
  }

  // -- records page: year-end dossier --------------------------------------------------------------------

  function initDossier() {
    var form = $("#dossier-form");
    var panel = $("#dossier-job");
    if (!form || !panel) return;
    form.addEventListener("submit", async function (e) {
      e.preventDefault();
      var button = $("#dossier-submit");
      var errorBox = role(panel, "error");
      var unit = $("#dossier-unit");
      var year = parseInt($("#dossier-year").value, 10);
      panel.hidden = false;
      errorBox.hidden = true;
      role(panel, "result").hidden = true;
      if (!(year >= 2000 && year <= 2100)) {
        showMessage(errorBox, "error", "Hãy ghi năm đánh giá (từ 2000 đến 2100).");
        return;
      }
      if (unit && !unit.value.trim()) {
        showMessage(errorBox, "error", "Hãy ghi tên đơn vị.");
        unit.focus();
        return;
      }
      var body = { year: year };
      if (unit) body.unit = unit.value.trim();
      var exclude = $("#dossier-exclude").value.split(/[\s,;]+/).filter(function (x) { return x; });
      if (exclude.length) body.exclude = exclude;
      setBusy(button, true, "Đang lập…");
      try {
        var job = await apiJson("POST", "/v1/dossiers", body);
        job = await followJob(panel, job);
        if (job.status === "failed") {
          showMessage(errorBox, "error", (job.error && job.error.message) || "Không lập được hồ sơ.");
        } else if (job.result_url) {
          var link = role(panel, "result-link");
          link.href = job.result_url;
          link.setAttribute("download", "");
          role(panel, "result").hidden = false;
        }
      } catch (err) {
        panel.dataset.status = "failed";
        showError(errorBox, err);
      } finally {
        setBusy(button, false);
      }
    });
  }

  // -- upload page ---------------------------------------------------------------------------------------

  function initUpload() {
    var form = $("#upload-form");
    if (!form) return;
    var zone = $("#dropzone");
    var input = $("#upload-input");
    var list = $("#upload-list");
    var submit = $("#upload-submit");
    var clear = $("#upload-clear");
    var summary = $("#upload-summary");
    var skippedBox = $("#upload-skipped");
    var unit = $("#upload-unit");
    var panel = $("#upload-job");
    var files = [];
    var busy = false;

    function key(f) { return f.name + "\u0000" + f.size + "\u0000" + f.lastModified; }

    function render() {
      list.textContent = "";
      var total = 0;
      files.forEach(function (f, i) {
        total += f.size;
        var remove = el("button", { type: "button", className: "btn btn-ghost btn-sm", text: "Bỏ",
          "aria-label": "Bỏ tệp " + f.name });
        remove.addEventListener("click", function () { files.splice(i, 1); render(); });
        list.appendChild(el("li", {}, [
          el("span", { className: "file-info" }, [
            el("span", { className: "file-name", text: f.name }),
            el("span", { className: "file-size", text: fmtSize(f.size) })
          ]),
          busy ? null : remove
        ]));
      });
      summary.textContent = files.length ? files.length + " tệp · " + fmtSize(total) : "";
      submit.disabled = busy || !files.length;
      clear.disabled = busy || !files.length;
    }

    function add(fileList) {
      var seen = {};
      files.forEach(function (f) { seen[key(f)] = true; });
      var skipped = [];
      Array.prototype.forEach.call(fileList || [], function (f) {
        var ext = (f.name.split(".").pop() || "").toLowerCase();
        if (SCAN_TYPES.indexOf(ext) < 0) { skipped.push(f.name); return; }
        if (!seen[key(f)]) { files.push(f); seen[key(f)] = true; }
      });
      if (skipped.length) {
        skippedBox.textContent = "Đã bỏ qua " + skipped.length + " tệp không phải PDF, JPEG, PNG, TIFF, HEIC hay WebP: " +
          skipped.join(", ");
        skippedBox.hidden = false;
      } else {
        skippedBox.hidden = true;
      }
      render();
    }

    zone.addEventListener("click", function (e) { if (e.target !== input && !busy) input.click(); });
    zone.addEventListener("keydown", function (e) {
      if ((e.key === "Enter" || e.key === " ") && !busy) { e.preventDefault(); input.click(); }
    });
    input.addEventListener("change", function () { add(input.files); input.value = ""; });
    ["dragenter", "dragover"].forEach(function (type) {
      zone.addEventListener(type, function (e) {
        e.preventDefault();
        if (e.dataTransfer) e.dataTransfer.dropEffect = "copy";
        zone.classList.add("is-over");
      });
    });
    zone.addEventListener("dragleave", function (e) {
      if (!zone.contains(e.relatedTarget)) zone.classList.remove("is-over");
    });
    zone.addEventListener("drop", function (e) {
      e.preventDefault();
      zone.classList.remove("is-over");
      if (!busy && e.dataTransfer) add(e.dataTransfer.files);
    });
    // A file dropped just beside the zone would otherwise make the browser open it and leave the page.
    ["dragover", "drop"].forEach(function (type) {
      window.addEventListener(type, function (e) {
        if (e.dataTransfer && Array.prototype.indexOf.call(e.dataTransfer.types || [], "Files") >= 0) e.preventDefault();
      });
    });
    clear.addEventListener("click", function () { files = []; skippedBox.hidden = true; render(); });

    function showRecords(job) {
      var box = role(panel, "records");
      box.textContent = "";
      var records = job.records || [];
      box.appendChild(el("h3", { text: records.length ? "Đã tạo " + records.length + " bản ghi" : "Chưa tạo được bản ghi nào" }));
      if (!records.length) return;
      var ul = el("ul", { className: "result-list", id: "upload-records" });
      records.forEach(function (r) {
        ul.appendChild(el("li", { "data-record": r.id }, [
          el("a", { href: "/records/" + encodeURIComponent(r.id), text: r.subject || "(chưa đọc được tên)" }),
          el("span", { className: "badge badge-" + r.status, text: STATUS_LABELS[r.status] || r.status })
        ]));
      });
      box.appendChild(ul);
    }

    form.addEventListener("submit", async function (e) {
      e.preventDefault();
      if (!files.length || busy) return;
      var errorBox = role(panel, "error");
      var note = role(panel, "note");
      panel.hidden = false;
      errorBox.hidden = true;
      note.hidden = true;
      role(panel, "records").textContent = "";
      role(panel, "problems").textContent = "";
      role(panel, "job-link").hidden = true;
      if (unit && !unit.value.trim()) {
        showMessage(errorBox, "error", "Hãy ghi tên đơn vị của các phiếu.");
        unit.focus();
        return;
      }
      var data = new FormData();
      files.forEach(function (f) { data.append("files", f, f.name); });
      if (unit) data.append("unit", unit.value.trim());
      busy = true;
      render();
      setBusy(submit, true, "Đang tải lên…");
      panel.scrollIntoView({ behavior: "smooth", block: "nearest" });
      var bar = role(panel, "bar");
      role(panel, "status").textContent = "Đang gửi tệp lên máy chủ";
      try {
        var job = await postWithProgress("/v1/submissions", data, function (ratio) {
          bar.value = Math.round(ratio * 100);
          role(panel, "pages").textContent = Math.round(ratio * 100) + "% dữ liệu";
        });
        var link = role(panel, "job-link");
        link.href = "/jobs";
        link.hidden = false;
        if (job.duplicate) {
          showMessage(note, "info", "Các tệp này đã được tải lên trước đây; dưới đây là kết quả của lần đó.");
        }
        files = [];
        job = await followJob(panel, job);
        if (job.status === "failed") {
          showMessage(errorBox, "error", (job.error && job.error.message) || "Xử lý không thành công.",
            "Có thể tải lên lại; các trang đã đọc được sẽ không bị tạo trùng.");
        }
        showRecords(job);
        if (job.errors && job.errors.length) {
          role(panel, "problems").appendChild(problemsTable(job.errors, "Trang không đọc được", true));
        }
      } catch (err) {
        showError(errorBox, err);
      } finally {
        busy = false;
        setBusy(submit, false);
        render();
      }
    });
    render();
  }

  // -- review screen -------------------------------------------------------------------------------------

  /** The value a control stands for: numbers for scores and years, null for empty, NaN when unreadable. */
  function valueOf(kind, raw) {
    var text = String(raw == null ? "" : raw).trim();
    if (kind === "score") return parseVn(text);
    if (kind === "int") return text === "" ? null : (/^\d{1,4}$/.test(text) ? Number(text) : NaN);
    return text === "" ? null : text;
  }

  function same(a, b) {
    if (typeof a === "number" && typeof b === "number" && Number.isNaN(a) && Number.isNaN(b)) return true;
    return a === b;
  }

  function initReview() {
    var form = $("#review-form");
    if (!form) return;
    var recordId = form.dataset.record;
    var version = Number(form.dataset.version);
    var controls = $all("[data-field]", form);
    var scoreControls = controls.filter(function (c) { return c.dataset.field.indexOf("scores.") === 0; });
    var declared = $("#f-total_declared");
    var liveTotal = $("#live-total");
    var declaredOut = $("#declared-total");
    var check = $("#total-check");
    var saveButtons = $all("[data-save]");  // the side panel's, and the phone's bottom bar
    var liveTotals = $all("[data-live-total]");
    var dirtyNotes = $all("[data-dirty]");
    var approveBtn = $("#approve-btn");
    var dirtyInfo = $("#dirty-info");
    var message = $("#review-message");

    function state(c) {
      var current = valueOf(c.dataset.kind, c.value);
      var original = valueOf(c.dataset.kind, c.dataset.original);
      var invalid = typeof current === "number" && Number.isNaN(current);
      return { current: current, changed: !same(current, original), invalid: invalid };
    }

    function changes() {
      var out = {};
      var invalid = [];
      controls.forEach(function (c) {
        if (c.disabled) return;
        var s = state(c);
        if (s.invalid) invalid.push(c);
        else if (s.changed) out[c.dataset.field] = s.current;
      });
      return { fields: out, invalid: invalid };
    }

    function update() {
      var sum = 0;
      var counted = 0;
      scoreControls.forEach(function (c) {
        var v = valueOf("score", c.value);
        if (typeof v === "number" && !Number.isNaN(v)) { sum += v; counted += 1; }
      });
      liveTotal.textContent = fmtVn(sum);
      liveTotals.forEach(function (node) { node.textContent = fmtVn(sum); });
      var d = declared ? valueOf("score", declared.value) : null;
      declaredOut.textContent = typeof d === "number" && !Number.isNaN(d) ? fmtVn(d) : "–";
      if (typeof d === "number" && !Number.isNaN(d) && counted) {
        var diff = Math.round((sum - d) * 100) / 100;
        check.textContent = diff === 0 ? "Khớp với tổng ghi trên phiếu."
          : "Lệch " + fmtVn(Math.abs(diff)) + " điểm so với tổng ghi trên phiếu.";
        check.className = "total-check " + (diff === 0 ? "is-ok" : "is-off");
      } else {
        check.textContent = "";
        check.className = "total-check";
      }
      var n = 0;
      var bad = 0;
      controls.forEach(function (c) {
        var s = state(c);
        c.classList.toggle("is-changed", s.changed && !s.invalid);
        c.classList.toggle("is-invalid", s.invalid);
        c.setAttribute("aria-invalid", s.invalid ? "true" : "false");
        if (s.changed) n += 1;
        if (s.invalid) bad += 1;
      });
      if (dirtyInfo) {
        dirtyInfo.textContent = bad ? bad + " ô có giá trị không hợp lệ (điểm phải là số, ví dụ 7,5)."
          : n ? n + " trường đã sửa, chưa lưu." : "Chưa có thay đổi.";
        dirtyInfo.className = bad ? "small text-error" : "muted small";
      }
      dirtyNotes.forEach(function (node) {
        node.textContent = bad ? "Có ô không hợp lệ" : n ? n + " thay đổi chưa lưu" : "";
      });
      saveButtons.forEach(function (b) { b.disabled = !n || bad > 0; });
    }

    controls.forEach(function (c) {
      c.addEventListener("input", update);
      c.addEventListener("change", update);
    });

    form.addEventListener("submit", async function (e) {
      e.preventDefault();
      var ch = changes();
      if (ch.invalid.length) {
        showMessage(message, "error", "Có ô chưa hợp lệ; điểm phải là số (ví dụ 7,5).");
        ch.invalid[0].focus();
        return;
      }
      if (!Object.keys(ch.fields).length) return;
      saveButtons.forEach(function (b) { setBusy(b, true, "Đang lưu…"); });
      message.hidden = true;
      try {
        await apiJson("PATCH", "/v1/records/" + encodeURIComponent(recordId), { fields: ch.fields, version: version });
        window.location.assign(window.location.pathname + "?msg=saved");
      } catch (err) {
        showWriteError(message, err, "Hãy tải lại trang để xem bản mới nhất rồi sửa lại.");
        saveButtons.forEach(function (b) { setBusy(b, false); });
        message.scrollIntoView({ block: "center" });  // on a phone Save is in the bottom bar, far from the message
        update();
      }
    });

    if (approveBtn) {
      approveBtn.addEventListener("click", async function () {
        message.hidden = true;
        if (Object.keys(changes().fields).length) {
          showMessage(message, "warning", "Bạn có thay đổi chưa lưu. Hãy lưu trước khi duyệt.");
          return;
        }
        setBusy(approveBtn, true, "Đang duyệt…");
        try {
          await apiJson("POST", "/v1/records/" + encodeURIComponent(recordId) + "/approve", { version: version });
          window.location.assign(window.location.pathname + "?msg=approved");
        } catch (err) {
          showWriteError(message, err, "Hãy tải lại trang để xem bản mới nhất.");
          setBusy(approveBtn, false);
        }
      });
    }

    // Deleting asks first (a second button, "Không xóa" focused), then goes back to the list.
    var deleteBtn = $("#delete-btn");
    var deleteBox = $("#delete-confirm");
    if (deleteBtn && deleteBox) {
      var deleteYes = $("#delete-yes");
      var deleteNo = $("#delete-cancel");
      var askDelete = function (open) {
        deleteBox.hidden = !open;
        deleteBtn.setAttribute("aria-expanded", open ? "true" : "false");
        (open ? deleteNo : deleteBtn).focus();
      };
      deleteBtn.addEventListener("click", function () { message.hidden = true; askDelete(deleteBox.hidden); });
      deleteNo.addEventListener("click", function () { askDelete(false); });
      deleteBox.addEventListener("keydown", function (e) { if (e.key === "Escape") askDelete(false); });
      deleteYes.addEventListener("click", async function () {
        setBusy(deleteYes, true, "Đang xóa…");
        deleteNo.disabled = true;
        try {
          await api("DELETE", "/v1/records/" + encodeURIComponent(recordId) + "?version=" + encodeURIComponent(version));
          window.location.assign("/records?msg=deleted");
        } catch (err) {
          showWriteError(message, err, "Hãy tải lại trang, xem bản mới nhất rồi mới xóa.");
          setBusy(deleteYes, false);
          deleteNo.disabled = false;
          askDelete(false);
          message.scrollIntoView({ block: "center" });
        }
      });
    }

    // A crop that cannot be loaded (page image gone, session expired) is replaced by a note, not a broken icon.
    $all("img[data-crop]").forEach(function (img) {
      function broken() {
        var fig = img.closest("figure");
        if (fig) fig.replaceWith(el("span", { className: "no-crop", text: "Không tải được ảnh" }));
      }
      if (img.complete && img.naturalWidth === 0) broken();
      else img.addEventListener("error", broken);
    });

    update();
  }

  // -- criteria sets: load an official appendix (admin) ------------------------------------------------------

  function initCriteriaImport() {
    var form = $("#criteria-import-form");
    if (form) {
      form.addEventListener("submit", async function (e) {
        e.preventDefault();
        var button = $("#criteria-submit");
        var errorBox = $("#criteria-error");
        errorBox.hidden = true;
        if (!$("#criteria-file").files.length) {
          showMessage(errorBox, "error", "Hãy chọn tệp phụ lục (.docx hoặc .pdf).");
          return;
        }
        var data = new FormData(form);
        if (!String(data.get("base") || "")) data.delete("base");
        setBusy(button, true, "Đang đọc tệp…");
        try {
          var item = await apiJson("POST", "/v1/criteria-imports", data);
          window.location.assign("/admin/criteria/imports/" + encodeURIComponent(item.token));
        } catch (err) {
          showError(errorBox, err);
          setBusy(button, false);
        }
      });
    }
    var panel = $("#criteria-decision");
    if (!panel) return;
    var token = encodeURIComponent(panel.getAttribute("data-token"));
    function decide(button, action, busyText) {
      button.addEventListener("click", async function () {
        var errorBox = $("#decision-error");
        errorBox.hidden = true;
        setBusy(button, true, busyText);
        try {
          var url = "/v1/criteria-imports/" + token + "/" + action;
          if (action === "accept") {
            var res = await apiJson("POST", url);
            window.location.assign("/admin/criteria?accepted=" + encodeURIComponent(res.ref));
          } else {
            await api("POST", url);  // 204, no body
            window.location.assign("/admin/criteria?rejected=1");
          }
        } catch (err) {
          showError(errorBox, err);
          setBusy(button, false);
        }
      });
    }
    decide($("#criteria-accept"), "accept", "Đang lưu…");
    decide($("#criteria-reject"), "reject", "Đang hủy…");
  }

  // -- review queue: flagged boxes one after another, keyboard only ------------------------------------------

  function initReviewQueue() {
    var root = $("#rq");
    if (!root) return;
    var LETTERS = ["a", "b", "c", "d", "e"];
    var limit = Number(root.dataset.limit) || 500;
    var input = $("#rq-input"), box = $("#rq-box"), errorBox = $("#rq-error"), choicesBox = $("#rq-choices");
    var items = [], pos = 0, confirmed = 0, pending = 0;
    var versions = {};  // record id -> the version the next confirm must name
    var chains = {};    // record id -> the last confirm sent for it: one record's confirms go in order
    var skipped = {};   // "record|field" -> true: not shown again on this visit

    function num(v) { return typeof v === "number" && isFinite(v) ? v : null; }

    function setState(state) { root.dataset.state = state; }

    async function load() {
      setState("loading");
      var data;
      try {
        data = await apiJson("GET", "/v1/review/queue?limit=" + limit);
      } catch (err) {
        box.hidden = false;
        showError(errorBox, err);
        return;
      }
      items = data.items.filter(function (it) { return !skipped[it.record_id + "|" + it.field]; });
      items.forEach(function (it) {
        if (!(it.record_id in versions) || versions[it.record_id] < it.version) versions[it.record_id] = it.version;
      });
      pos = 0;
      show();
    }

    function progress() {
      var left = items.length - pos;
      $("#rq-progress").textContent = "Đã xác nhận " + confirmed + " ô · còn " + left + " ô" +
        (pending ? " · đang lưu " + pending : "");
    }

    function show() {
      progress();
      if (pos >= items.length) {
        box.hidden = true;
        if (pending) { setState("saving"); return; }  // the last confirm's answer reloads the queue
        $("#rq-done").hidden = false;
        setState("done");
        return;
      }
      var it = items[pos];
      if (it.sum_only && sumAgrees(it)) { pos += 1; show(); return; }
      box.hidden = false;
      $("#rq-done").hidden = true;
      box.dataset.record = it.record_id;
      box.dataset.field = it.field;
      $("#rq-name").textContent = it.subject_name || "(chưa đọc được tên)";
      $("#rq-label").textContent = it.label;
      $("#rq-conf").textContent = it.confidence == null ? "" : Math.round(it.confidence * 100) + "%";
      var crop = $("#rq-crop");
      if (crop.getAttribute("src") !== it.crop) {
        // Never the last box's crop beside this box's value: hidden until this one has loaded.
        crop.classList.add("is-loading");
        crop.src = it.crop;
      }
      $("#rq-crop").alt = "Ảnh ô “" + it.label + "” của " + (it.subject_name || "phiếu");
      if (items[pos + 1]) new Image().src = items[pos + 1].crop;  // the next crop is ready when it is wanted
      $("#rq-hint").textContent = it.max_points != null ? "(0 – " + fmtVn(it.max_points) + ")" : "";
      var notes = $("#rq-notes");
      notes.textContent = "";
      it.notes.forEach(function (n) { notes.appendChild(el("li", { text: n })); });
      choicesBox.textContent = "";
      it.choices.forEach(function (v, i) {
        var b = el("button", { type: "button", className: "btn rq-choice", "data-value": String(v),
                               "aria-keyshortcuts": LETTERS[i].toUpperCase() },
                   [el("kbd", { text: LETTERS[i].toUpperCase() }), " " + fmtVn(v)]);
        b.addEventListener("click", function () { confirm(v); });
        choicesBox.appendChild(b);
      });
      errorBox.textContent = "";
      errorBox.className = "";
      input.value = num(it.value) != null ? fmtVn(it.value) : "";
      input.focus();
      input.select();  // Enter keeps it, typing replaces it
      sums();
      setState("box");
    }

    function sumAgrees(it) {
      return num(it.total_declared) != null && Math.abs(it.scores_sum - it.total_declared) < 0.005;
    }

    function sums() {
      var it = items[pos];
      if (!it) return;
      var typed = parseVn(input.value);
      var typedN = Number.isNaN(typed) ? null : typed;
      var declared = it.field === "total_declared" ? typedN : num(it.total_declared);
      var sum = it.field === "total_declared" ? it.scores_sum
        : it.scores_sum - (num(it.value) || 0) + (typedN || 0);
      $("#rq-declared").textContent = declared == null ? "–" : fmtVn(declared);
      $("#rq-sum").textContent = fmtVn(sum);
      var diff = $("#rq-diff");
      if (declared == null) { diff.textContent = ""; diff.className = "rq-diff"; }
      else if (Math.abs(sum - declared) < 0.005) { diff.textContent = "khớp"; diff.className = "rq-diff rq-ok"; }
      else { diff.textContent = "lệch " + fmtVn(Math.abs(sum - declared)); diff.className = "rq-diff rq-bad"; }
    }

    function confirm(value) {
      var it = items[pos];
      if (value !== null && (Number.isNaN(value) || value < 0 || (it.max_points != null && value > it.max_points))) {
        showMessage(errorBox, "error", Number.isNaN(value) ? "Giá trị không phải là số."
          : "Điểm phải từ 0 đến " + fmtVn(it.max_points) + ".", "Gõ lại rồi nhấn Enter.");
        input.select();
        return;
      }
      // Later boxes of the same sheet see this answer in their live sum.
      items.slice(pos + 1).forEach(function (other) {
        if (other.record_id !== it.record_id) return;
        if (it.field === "total_declared") other.total_declared = value;
        else other.scores_sum += (value || 0) - (num(it.value) || 0);
      });
      var id = it.record_id;
      pending += 1;
      chains[id] = (chains[id] || Promise.resolve()).then(function () {
        return apiJson("POST", "/v1/records/" + encodeURIComponent(id) + "/confirm",
                       { field: it.field, value: value, version: versions[id] });
      }).then(function (res) {
        versions[id] = res.version;
      }, function (err) {
        showError(errorBox, err);
        skipped[id + "|" + it.field] = false;
        if (err.status === 409) versions[id] = -1;  // reloaded below with the record's current version
      }).then(function () {
        pending -= 1;
        root.dataset.pending = String(pending);
        progress();
        if (!pending && pos >= items.length) load();
      });
      root.dataset.pending = String(pending);
      confirmed += 1;
      pos += 1;
      show();
    }

    function skip() {
      var it = items[pos];
      if (!it) return;
      skipped[it.record_id + "|" + it.field] = true;
      pos += 1;
      show();
    }

    $("#rq-crop").addEventListener("load", function () { this.classList.remove("is-loading"); });
    $("#rq-crop").addEventListener("error", function () { this.classList.remove("is-loading"); });
    $("#rq-form").addEventListener("submit", function (e) {
      e.preventDefault();
      if (pos < items.length) confirm(parseVn(input.value));
    });
    $("#rq-skip").addEventListener("click", skip);
    input.addEventListener("input", sums);
    input.addEventListener("keydown", function (e) {
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key === "Escape") { e.preventDefault(); skip(); return; }
      var i = LETTERS.indexOf(String(e.key).toLowerCase());
      var it = items[pos];
      if (i >= 0 && it && i < it.choices.length) { e.preventDefault(); confirm(it.choices[i]); }
    });
    load();
  }

  // -- admin: retrain the recogniser ------------------------------------------------------------------------

  function initDigits() {
    var button = $("#digits-retrain");
    if (!button) return;
    var result = $("#digits-result"), errorBox = $("#digits-error");
    button.addEventListener("click", async function () {
      errorBox.textContent = "";
      setBusy(button, true, "Đang học…");
      result.textContent = "Đang học lại; việc này mất vài phút.";
      try {
        await apiJson("POST", "/v1/admin/digits/retrain");
        var st;
        do {
          await sleep(2000);
          st = await apiJson("GET", "/v1/admin/digits");
        } while (st.running);
        result.textContent = st.last ? st.last.reason : "";
        $("#digits-model").textContent = st.model === "tuned" ? "đã học từ các ô đã sửa" : "mô hình gốc";
        $("#digits-samples").textContent = String(st.samples);
      } catch (err) {
        showError(errorBox, err);
        result.textContent = "";
      }
      setBusy(button, false);
    });
  }

  function init() {
    initDigits();
    initReviewQueue();
    initCriteriaImport();
    initDownloads();
    initPrintPack();
    initDossier();
    initUpload();
    initReview();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
