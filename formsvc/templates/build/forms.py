"""One builder per form. Every visible value is a docxtpl tag filled from the render context."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from docx.document import Document as DocxDocument
from docx.enum.table import WD_ALIGN_VERTICAL
from docx.enum.text import WD_BREAK
from docx.table import Table

from formsvc.templates.build.blocks import (
    borderless,
    cell_text,
    fixed_row,
    grid,
    loop_row,
    national_header,
    new_document,
    noi_nhan,
    para,
    repeat_header,
    signature,
    title,
    widths,
)

TABLE_PT = 11


def _header_row(table, labels: list[str], height: float = 14) -> None:  # type: ignore[no-untyped-def]
    row = table.rows[0]
    for cell, label in zip(row.cells, labels, strict=True):
        cell_text(cell, label, bold=True, size=TABLE_PT, align="center")
    fixed_row(row, height)
    repeat_header(row)


def _data_row(table, tags: list[str], height: float, *, bold: bool = False,  # type: ignore[no-untyped-def]
              aligns: list[str] | None = None) -> None:
    row = table.add_row()
    for n, (cell, tag) in enumerate(zip(row.cells, tags, strict=True)):
        align = aligns[n] if aligns else ("left" if n == 1 else "center")
        cell_text(cell, tag, bold=bold, size=TABLE_PT, align=align)
        cell.vertical_alignment = WD_ALIGN_VERTICAL.CENTER
    fixed_row(row, height)


def _indicator_table(doc: DocxDocument, score_label: str, committee_label: str) -> Table:
    """The indicator table's header and the opening of its loops: a bold row per criterion, then (the caller's
    rows) one per indicator."""
    t = doc.add_table(rows=1, cols=6)
    grid(t)
    _header_row(t, ["TT", "Tiêu chí, chỉ tiêu", "Điểm tối đa", score_label, "Minh chứng", committee_label])
    loop_row(t, "{%tr for c in criteria %}")
    _data_row(t, ["{{ c.label }}", "{{ c.title }}", "{{ c.max }}", "", "", ""], 10, bold=True)
    loop_row(t, "{%tr for i in c.indicators %}")
    return t


def _score_table(doc: DocxDocument, score_label: str, committee_label: str) -> None:
    """Indicator table: number, title, max, self score box, evidence, committee score box."""
    t = _indicator_table(doc, score_label, committee_label)
    _data_row(t, ["{{ i.number }}", "{{ i.title }}", "{{ i.max }}", "{{ i.score }}", "{{ i.evidence }}",
                  "{{ i.committee }}"], 15)
    loop_row(t, "{%tr endfor %}")
    loop_row(t, "{%tr endfor %}")
    _data_row(t, ["", "TỔNG ĐIỂM", "{{ total_max }}", "{{ total }}", "", "{{ committee_total }}"], 14, bold=True)
    widths(t, [10, 69, 16, 22, 26, 22])


# ĐVHT indicator titles run from one line to several (Thông tư 22/2020, Điều 5, 1c is ~190 characters). Rows
# keep an exact height (blank and filled forms share one geometry), so a row height is chosen per indicator
# from these, by the `size` the render context computes from the title's length.
DVHT_ROW_MM = (15, 21, 27)
SUB_ITEM_ROW_MM = 5.5


def _dvht_score_table(doc: DocxDocument, score_label: str, committee_label: str) -> None:
    """The ĐVHT indicator table: like _score_table, with taller rows for long titles and the lines printed
    under an indicator (the 8 qualities of 3a) as rows without score boxes."""
    t = _indicator_table(doc, score_label, committee_label)
    for n, height in enumerate(DVHT_ROW_MM):
        loop_row(t, f"{{%tr {'if' if n == 0 else 'elif'} i.size == {n} %}}")
        _data_row(t, ["{{ i.number }}", "{{ i.title }}", "{{ i.max }}", "{{ i.score }}", "{{ i.evidence }}",
                      "{{ i.committee }}"], height)
    loop_row(t, "{%tr endif %}")
    loop_row(t, "{%tr for s in i.sub_items %}")
    row = t.add_row()
    merged = row.cells[1].merge(row.cells[5])
    for extra in merged.paragraphs[1:]:  # merging keeps each cell's empty paragraph: one line is enough
        extra._element.getparent().remove(extra._element)
    cell_text(merged, "{{ s }}", size=10, italic=True)
    fixed_row(row, SUB_ITEM_ROW_MM)
    loop_row(t, "{%tr endfor %}")
    loop_row(t, "{%tr endfor %}")
    loop_row(t, "{%tr endfor %}")
    _data_row(t, ["", "TỔNG ĐIỂM", "{{ total_max }}", "{{ total }}", "", "{{ committee_total }}"], 14, bold=True)
    widths(t, [10, 69, 16, 22, 26, 22])


def _info_rows(doc: DocxDocument, rows: list[tuple[str, str]]) -> None:
    """Label/value lines in exact-height rows: a long value is clipped instead of moving the table below."""
    t = doc.add_table(rows=len(rows), cols=2)
    borderless(t)
    for row, (label, tag) in zip(t.rows, rows, strict=True):
        cell_text(row.cells[0], label)
        cell_text(row.cells[1], tag)
        fixed_row(row, 6.5)
    widths(t, [28, 137])


def _provisional(doc: DocxDocument) -> None:
    para(doc, "{{ criteria_source }}", italic=True, size=11)
    para(doc, "{{ provisional_note }}", italic=True, size=11, space_after=4)


def cdht_self_assessment(doc: DocxDocument) -> None:
    national_header(doc, number_tag=None, dated=False)
    title(doc, "BẢN TỰ ĐÁNH GIÁ", "DANH HIỆU “CÔNG DÂN HỌC TẬP” NĂM {{ year }}")
    _info_rows(doc, [("Họ và tên:", "{{ full_name }}"), ("Năm sinh:", "{{ birth_year }}"),
                     ("Đơn vị:", "{{ unit }}"), ("Đối tượng:", "{{ group_label }}")])
    _provisional(doc)
    _score_table(doc, "Điểm tự chấm", "Tổ đánh giá chấm")
    para(doc, "{{ place_date }}", italic=True, align="right", space_before=6)
    signature(doc, left=("XÁC NHẬN CỦA TỔ ĐÁNH GIÁ", "{{ committee_signer }}"),
              right=("NGƯỜI TỰ ĐÁNH GIÁ", "{{ full_name_signature }}"))


def dvht_self_assessment(doc: DocxDocument) -> None:
    national_header(doc)
    title(doc, "BẢN TỰ ĐÁNH GIÁ, XẾP LOẠI", "“ĐƠN VỊ HỌC TẬP” NĂM {{ year }}")
    _info_rows(doc, [("Tên đơn vị:", "{{ full_name }}"), ("Cơ quan quản lý:", "{{ unit }}")])
    _provisional(doc)
    _dvht_score_table(doc, "Điểm tự đánh giá", "Đoàn kiểm tra chấm")
    para(doc, "Tự xếp loại: {{ band_label }}", bold=True, space_before=6)
    signature(doc, left=None, right=("THỦ TRƯỞNG ĐƠN VỊ", "{{ head_name }}"))


def cdht_registration_list(doc: DocxDocument) -> None:
    national_header(doc)
    title(doc, "DANH SÁCH ĐĂNG KÝ XÂY DỰNG MÔ HÌNH “CÔNG DÂN HỌC TẬP”", "Năm {{ year }}")
    t = doc.add_table(rows=1, cols=6)
    grid(t)
    _header_row(t, ["STT", "Họ và tên", "Năm sinh", "Chức vụ, đơn vị", "Đối tượng", "Ký xác nhận"], 12)
    loop_row(t, "{%tr for p in people %}")
    _data_row(t, ["{{ p.n }}", "{{ p.full_name }}", "{{ p.birth_year }}", "{{ p.unit }}", "{{ p.group_label }}",
                  ""], 10)
    loop_row(t, "{%tr endfor %}")
    widths(t, [12, 48, 18, 38, 27, 22])
    signature(doc, left=("NGƯỜI LẬP DANH SÁCH", "{{ preparer_name }}"), right=("{{ head_title }}", "{{ head_name }}"))


def cdht_evidence_checklist(doc: DocxDocument) -> None:
    national_header(doc, number_tag=None, dated=False)
    title(doc, "DANH MỤC MINH CHỨNG", "Đánh giá, công nhận danh hiệu “Công dân học tập” năm {{ year }}")
    para(doc, "Họ và tên: {{ full_name }}")
    para(doc, "Đơn vị: {{ unit }}")
    _provisional(doc)
    t = doc.add_table(rows=1, cols=4)
    grid(t)
    _header_row(t, ["TT", "Chỉ tiêu", "Minh chứng gợi ý", "Có"], 12)
    loop_row(t, "{%tr for i in indicators %}")
    _data_row(t, ["{{ i.number }}", "{{ i.title }}", "{{ i.evidence_hint }}", "{{ i.tick }}"], 15)
    loop_row(t, "{%tr endfor %}")
    widths(t, [10, 70, 70, 15])
    signature(doc, left=None, right=("NGƯỜI KÊ KHAI", "{{ full_name_signature }}"))


def _minutes_people(doc: DocxDocument) -> None:
    para(doc, "Thời gian: {{ meeting_start }}")
    para(doc, "Địa điểm: {{ place }}")
    para(doc, "Chủ trì: {{ chair }}")
    para(doc, "Thư ký: {{ secretary }}")
    para(doc, "Thành phần: có mặt {{ members_present }} / {{ members_total }} thành viên.", space_after=4)


def cdht_minutes(doc: DocxDocument) -> None:
    national_header(doc)
    title(doc, "BIÊN BẢN HỌP XÉT", "Công nhận danh hiệu “Công dân học tập” năm {{ year }}")
    _minutes_people(doc)
    para(doc, "Tổ đánh giá đã xem xét bản tự đánh giá của từng cá nhân và thống nhất như sau:", space_after=4)
    t = doc.add_table(rows=1, cols=6)
    grid(t)
    _header_row(t, ["STT", "Họ và tên", "Năm sinh", "Điểm tự đánh giá", "Điểm thống nhất", "Đề nghị công nhận"], 14)
    loop_row(t, "{%tr for p in candidates %}")
    _data_row(t, ["{{ p.n }}", "{{ p.full_name }}", "{{ p.birth_year }}", "{{ p.self_total }}",
                  "{{ p.agreed_total }}", "{{ p.proposed }}"], 12)
    loop_row(t, "{%tr endfor %}")
    widths(t, [12, 55, 18, 27, 27, 26])
    # Why each person is not proposed; the heading starts with "Kết quả" so a reader's candidate table ends there.
    para(doc, "{%p if not_proposed %}")
    para(doc, "Kết quả xét: {{ proposed_count }} người được đề nghị công nhận. Những người không được đề nghị "
              "và lý do:", space_before=6)
    para(doc, "{%p for r in not_proposed %}")
    para(doc, "– {{ r.full_name }} (số thứ tự {{ r.n }}): {{ r.reasons }}", align="justify", size=12)
    para(doc, "{%p endfor %}")
    para(doc, "{%p endif %}")
    para(doc, "Kết quả biểu quyết: {{ votes_for }} / {{ votes_total }} thành viên đồng ý.", space_before=6)
    para(doc, "Cuộc họp kết thúc lúc {{ meeting_end }}.", space_after=4)
    signature(doc, left=("THƯ KÝ", "{{ secretary_signature }}"), right=("CHỦ TRÌ", "{{ chair_signature }}"))


def cdht_decision(doc: DocxDocument) -> None:
    national_header(doc)
    title(doc, "QUYẾT ĐỊNH", "Về việc công nhận danh hiệu “Công dân học tập” năm {{ year }}")
    para(doc, "{{ head_title }}", bold=True, align="center", space_after=4)
    para(doc, "{%p for b in bases %}")
    para(doc, "{{ b }};", italic=True, align="justify")
    para(doc, "{%p endfor %}")
    para(doc, "QUYẾT ĐỊNH:", bold=True, align="center", space_before=6, space_after=4)
    para(doc, "Điều 1. Công nhận {{ count }} cá nhân đạt danh hiệu “Công dân học tập” năm {{ year }} "
              "(có danh sách kèm theo).", align="justify")
    para(doc, "Điều 2. Quyết định có hiệu lực kể từ ngày ký.", align="justify")
    para(doc, "Điều 3. Các bộ phận liên quan và các cá nhân có tên tại Điều 1 chịu trách nhiệm thi hành "
              "Quyết định này./.", align="justify", space_after=6)
    noi_nhan(doc)
    signature(doc, left=None, right=("{{ head_title }}", "{{ head_name }}"))
    p = para(doc)
    p.add_run().add_break(WD_BREAK.PAGE)
    title(doc, "DANH SÁCH CÁ NHÂN ĐẠT DANH HIỆU “CÔNG DÂN HỌC TẬP” NĂM {{ year }}",
          "(Kèm theo Quyết định số {{ doc_number }})")
    t = doc.add_table(rows=1, cols=5)
    grid(t)
    _header_row(t, ["STT", "Họ và tên", "Năm sinh", "Chức vụ, đơn vị", "Tổng điểm"], 12)
    loop_row(t, "{%tr for p in people %}")
    _data_row(t, ["{{ p.n }}", "{{ p.full_name }}", "{{ p.birth_year }}", "{{ p.unit }}", "{{ p.total }}"], 10)
    loop_row(t, "{%tr endfor %}")
    widths(t, [12, 55, 20, 53, 25])


def _counts_table(doc: DocxDocument, labels: list[str], tags: list[str], col_mm: list[float]) -> None:
    t = doc.add_table(rows=1, cols=len(labels))
    grid(t)
    _header_row(t, labels, 20)
    _data_row(t, tags, 12, aligns=["center"] * len(tags))
    widths(t, col_mm)


def _counts_report(doc: DocxDocument, summary: str, labels: list[str], tags: list[str], col_mm: list[float],
                   intro: str | None = None) -> None:
    """A report upward: addressee, optional intro, one row of counts and rates, notes, recipients, signature."""
    national_header(doc)
    title(doc, "BÁO CÁO", summary)
    para(doc, "Kính gửi: {{ addressee }}", align="center", space_after=6)
    if intro:
        para(doc, intro, align="justify", space_after=4)
    _counts_table(doc, labels, tags, col_mm)
    para(doc, "{{ notes }}", align="justify", space_before=6, space_after=6)
    noi_nhan(doc)
    signature(doc, left=None, right=("{{ head_title }}", "{{ head_name }}"))


def cdht_unit_report(doc: DocxDocument) -> None:
    _counts_report(
        doc, "Kết quả đánh giá, công nhận danh hiệu “Công dân học tập” năm {{ year }}",
        ["Tổng số CB, GV, NV", "Số đăng ký", "Tỷ lệ", "Số tự đánh giá", "Số được công nhận", "Tỷ lệ công nhận"],
        ["{{ staff }}", "{{ registered }}", "{{ registered_rate }}", "{{ self_assessed }}", "{{ recognised }}",
         "{{ recognised_rate }}"], [30, 27, 24, 28, 30, 26],
        intro="{{ issuer_name }} báo cáo kết quả đánh giá, công nhận danh hiệu “Công dân học tập” năm {{ year }} "
              "như sau:",
    )


def cdht_registration_progress(doc: DocxDocument) -> None:
    _counts_report(
        doc, "Tiến độ đăng ký xây dựng mô hình “Công dân học tập” năm {{ year }}",
        ["Tổng số CB, GV, NV", "Đã đăng ký tài khoản", "Tỷ lệ", "Đã tự đánh giá", "Tỷ lệ"],
        ["{{ staff }}", "{{ registered }}", "{{ registered_rate }}", "{{ self_assessed }}",
         "{{ self_assessed_rate }}"], [35, 35, 30, 35, 30],
    )


def dvht_registration(doc: DocxDocument) -> None:
    national_header(doc)
    title(doc, "BẢN ĐĂNG KÝ", "Danh hiệu “Đơn vị học tập” năm {{ next_year }}")
    para(doc, "Kính gửi: {{ addressee }}", align="center", space_after=6)
    para(doc, "Tên đơn vị: {{ full_name }}")
    para(doc, "Địa chỉ: {{ address }}")
    para(doc, "Số thành viên: {{ members }}")
    para(doc, "Kết quả xếp loại năm {{ year }}: {{ band_label }}", space_after=4)
    para(doc, "Đơn vị đăng ký phấn đấu đạt danh hiệu “Đơn vị học tập” năm {{ next_year }} và cam kết thực hiện "
              "đầy đủ các tiêu chí theo quy định.", align="justify", space_after=6)
    signature(doc, left=None, right=("THỦ TRƯỞNG ĐƠN VỊ", "{{ head_name }}"))


def dvht_inspection_minutes(doc: DocxDocument) -> None:
    national_header(doc)
    title(doc, "BIÊN BẢN KIỂM TRA", "Đánh giá, xếp loại “Đơn vị học tập” năm {{ year }}")
    para(doc, "Đơn vị được kiểm tra: {{ full_name }}")
    _minutes_people(doc)
    _provisional(doc)
    _dvht_score_table(doc, "Đơn vị tự đánh giá", "Đoàn kiểm tra chấm")
    para(doc, "Xếp loại: {{ band_label }}", bold=True, space_before=6)
    signature(doc, left=("THƯ KÝ", "{{ secretary_signature }}"), right=("TRƯỞNG ĐOÀN", "{{ chair_signature }}"))


BUILDERS: dict[str, Callable[[DocxDocument], None]] = {
    "cdht-self-assessment": cdht_self_assessment,
    "cdht-registration-list": cdht_registration_list,
    "cdht-evidence-checklist": cdht_evidence_checklist,
    "cdht-minutes": cdht_minutes,
    "cdht-decision": cdht_decision,
    "cdht-unit-report": cdht_unit_report,
    "cdht-registration-progress": cdht_registration_progress,
    "dvht-self-assessment": dvht_self_assessment,
    "dvht-registration": dvht_registration,
    "dvht-inspection-minutes": dvht_inspection_minutes,
}


def build_all(out_dir: Path) -> list[Path]:
    written = []
    for form_id, builder in BUILDERS.items():
        doc = new_document()
        builder(doc)
        # The builder leaves python-docx's initial empty paragraph first; drop it so page 1 starts at the header.
        body = doc.element.body
        first = body[0]
        if first.tag.endswith("}p") and not "".join(first.itertext()).strip():
            body.remove(first)
        path = out_dir / f"{form_id}.docx"
        doc.core_properties.title = form_id
        doc.core_properties.author = "formsvc"
        doc.save(str(path))
        written.append(path)
    return written
