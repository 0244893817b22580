"""`xlsearch-app`: start the Streamlit app (the same as `streamlit run app/streamlit_app.py`).

Arguments are passed to `streamlit run`, e.g. `xlsearch-app --server.port 8502`. Settings come from
environment variables (see app/settings.py); collections are read from `<data>/collections`.
"""

from __future__ import annotations

import sys
from pathlib import Path

APP_SCRIPT = Path(__file__).resolve().parent / "streamlit_app.py"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["-h"], ["--help"]):
        print(__doc__.strip())
        return 0
    from streamlit.web import cli as stcli

    sys.argv = ["streamlit", "run", str(APP_SCRIPT), "--server.headless", "true", *args]
    return int(stcli.main() or 0)


if __name__ == "__main__":
    sys.exit(main())
