"""The ``knockin-geo`` command line (shipped as ``knockin_geo.cli``)."""
