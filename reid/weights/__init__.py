"""The shipped re-ID model (see docs/MODEL_CARD.md); a package so that it installs with reid."""
