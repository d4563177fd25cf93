"""The library the stage scripts share: registry, params schema, models, file formats."""
