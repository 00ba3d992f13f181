// The receipt page (written by the web page work).
