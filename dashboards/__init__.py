"""The managers' dashboards (Streamlit): `oppwh dashboard` runs APP."""

from pathlib import Path

APP = Path(__file__).with_name("app.py")
