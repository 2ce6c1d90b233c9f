"""Builds the DOCX templates (docxtpl tags inside python-docx documents).

Run `python -m formsvc.templates.build` after changing a form; the generated .docx files are committed.
Each tag is written as one run, so no Jinja tag is ever split across Word runs.
"""
