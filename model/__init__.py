"""An example user program for trainlog; trainlog launches it but never imports it."""
