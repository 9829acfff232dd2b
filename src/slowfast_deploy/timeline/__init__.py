"""Timelines of long videos: windows, the run loop, segments, outputs and rendering."""
