"""Web: request/response surfaces (pages, JSON API, administration, embeds) over the store and live views."""
