"""Real PDF files made with fpdf2 for the tests."""

from pathlib import Path

from fpdf import FPDF


def write_pdf(path: Path, pages: list[str], *, user_password: str | None = None) -> Path:
    """A PDF with one page per string (lines split on newlines)."""
    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    if user_password is not None:
        pdf.set_encryption(owner_password="owner", user_password=user_password)
    for text in pages:
        pdf.add_page()
        for line in text.splitlines():
            pdf.cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return path


def write_image_only_pdf(path: Path) -> Path:
    """A PDF whose only page holds a drawing and no text layer."""
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 60, style="F")
    pdf.output(str(path))
    return path
