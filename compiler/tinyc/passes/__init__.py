"""Graph passes: each is a function Graph -> Graph, listed in order in tinyc.pipeline."""
