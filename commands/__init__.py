"""The commands main.py dispatches to, above a single run: many runs and their plan (planning, with parallel's
worker processes for --jobs), --compare (comparing), --tune (tune) and --resume (resuming)."""
