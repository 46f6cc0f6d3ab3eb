"""Video input (PyAV): frames as RGB uint8, fps, size and frame count. Imports neither torch nor OpenCV."""

from .io import VIDEO_SUFFIXES, Video, VideoDecodeError, VideoError, VideoInfo, VideoReader, probe_video, read_video

__all__ = ["VIDEO_SUFFIXES", "Video", "VideoDecodeError", "VideoError", "VideoInfo", "VideoReader", "probe_video",
           "read_video"]
