"""The platform's resources, one service class per kind, each owning its rules and views."""
