"""reports: the PDF DiagnosticReport (reportlab)."""
