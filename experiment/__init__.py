"""What an experiment is: a run's config made from a model file's recipe, the command line or a record (configs),
the one definition of "the same experiment" that --report's rows and --compare's reuse share (definition), what
produced a run (provenance) and a recipe search's study (studies)."""
