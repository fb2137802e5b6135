"""The PostgreSQL wire protocol for ``warehouse-ml serve``: protocol (``wire``), sessions (``session``), statement
checks (``policy``), catalog emulation (``catalog``), types (``types``), authentication (``auth``)."""
