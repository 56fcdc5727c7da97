"""Date formats for the console (FORMAT_MODULE_PATH): every moment Django renders carries its zone's abbreviation,
in the format organizations.clock uses ("Wed 02 Dec 2026, 14:05 EST"), so no page shows an unlabelled time."""

DATETIME_FORMAT = "D d M Y, H:i T"
SHORT_DATETIME_FORMAT = "D d M Y, H:i T"
