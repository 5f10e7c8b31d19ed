"""Date and number formats where Django's own do not fit Tunisian usage."""
