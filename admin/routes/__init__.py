"""Admin routes by page: auth (login), overview, presets (and channel bindings), rankings (review, labels,
exports), playground, users."""
