"""Presentation: static pages built from what wn published (reports) or from the project (catalog).

``published``  reads an experiment's published rows through a warehouse adapter (nothing recomputed)
``report``     published rows -> a page model -> one self-contained HTML file per experiment
``catalog``    the project (plus its compiled SQL, no connection) -> a static catalog site
``charts``     Vega-Lite specs (altair), rendered to inline SVG at build time (vl-convert)
``html``       the Jinja environment and the number formats both pages share

Heavy imports (altair, vl-convert) happen only when a page is built, never when ``wn`` starts.
"""
