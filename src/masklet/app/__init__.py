"""The annotation app (`masklet app`, DESIGN §12): a thin HTTP layer over the session API with
SQLite persistence (`masklet.app.store`). Imports predictors, session, io and weights only;
nothing but the CLI imports it."""
