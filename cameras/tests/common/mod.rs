//! What several camera tests share: decoding the JPEGs the code under test makes.

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

/// A JPEG decoded by GStreamer's jpegdec: its width, height and RGB pixels (rows without
/// padding).
pub fn decode_jpeg(jpeg: &[u8]) -> (u32, u32, Vec<u8>) {
    assert!(jpeg.starts_with(&[0xff, 0xd8]) && jpeg.ends_with(&[0xff, 0xd9]), "not a complete JPEG");
    gst::init().unwrap();
    let pipeline = gst::parse::launch(
        "appsrc name=src caps=image/jpeg ! jpegparse ! jpegdec ! videoconvert ! video/x-raw,format=RGB \
         ! appsink name=sink sync=false",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let src = pipeline.by_name("src").unwrap().downcast::<gst_app::AppSrc>().unwrap();
    let sink = pipeline.by_name("sink").unwrap().downcast::<gst_app::AppSink>().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    src.push_buffer(gst::Buffer::from_slice(jpeg.to_vec())).unwrap();
    src.end_of_stream().unwrap();
    let sample = sink.try_pull_sample(gst::ClockTime::from_seconds(5)).expect("the JPEG decodes");
    pipeline.set_state(gst::State::Null).unwrap();
    let s = sample.caps().unwrap().structure(0).unwrap().to_owned();
    let (w, h) = (s.get::<i32>("width").unwrap() as usize, s.get::<i32>("height").unwrap() as usize);
    let map = sample.buffer().unwrap().map_readable().unwrap();
    // RGB rows are padded to 4 bytes.
    let stride = (w * 3 + 3) & !3;
    let rgb = (0..h).flat_map(|y| map[y * stride..y * stride + w * 3].iter().copied()).collect();
    (w as u32, h as u32, rgb)
}
