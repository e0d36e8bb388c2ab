"""s2i's Dagster layer (`pipelines.definitions`) and its plain-Python libraries (`pipelines.media`, `.data`).

`dagster ... -m pipelines` finds `defs` here. It is imported lazily so that the libraries, which run in
worker processes, never pay for (or depend on) importing Dagster.
"""


def __getattr__(name: str):
    if name == "defs":
        from pipelines.definitions import defs

        return defs
    raise AttributeError(f"module 'pipelines' has no attribute {name!r}")


def __dir__() -> list[str]:
    return ["defs"]
