"""Web shell: base layout, navigation, portal and workbench home pages."""
