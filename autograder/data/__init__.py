"""Data loaders for the exercises (kept inside the engine's package: a top-level ``datasets`` package would
shadow Hugging Face's in students' environments)."""
