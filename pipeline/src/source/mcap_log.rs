//! ROS 2 logs in MCAP: a single `.mcap` file or a rosbag2 folder (its `.mcap` splits are
//! read in name order). Chunked or not, zstd or lz4, read incrementally: memory is bounded
//! by the largest chunk, not the file.
//!
//! The topic is chosen when opening: a named one must carry PointCloud2 in CDR; by default
//! it is the PointCloud2 channel with the lowest id in the summary, or, for a file without a
//! summary (a recording cut short), the first PointCloud2 channel met while reading. A
//! message that fails to decode is a [`Skip`]; a container error ends that file with a
//! [`Skip`] and the replay goes on with the next split.

use super::{Frame, Skip, Source, SourceItem};
use crate::error::io_error;
use crate::pointcloud2::{POINTCLOUD2_TYPE, PointCloud2};
use crate::{PipelineError, Result};
use mcap::sans_io::summary_reader::{SummaryReadEvent, SummaryReader};
use std::collections::{BTreeSet, VecDeque};
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};

/// The message encoding of ROS 2 channels.
const CDR: &str = "cdr";

type Reader = mcap::io::MessageReader<BufReader<File>>;

/// PointCloud2 frames of one topic of an MCAP log.
pub struct McapSource {
    root: PathBuf,
    /// The file being read and its reader.
    current: Option<(PathBuf, Reader)>,
    pending: VecDeque<PathBuf>,
    /// `None` until the first PointCloud2 message when the default topic had no summary.
    topic: Option<String>,
    expected: Option<u64>,
    /// Messages of the topic seen so far.
    index: u64,
    /// Frames yielded so far, skips included.
    seq: u64,
}

fn is_cloud_channel(c: &mcap::Channel<'_>) -> bool {
    c.message_encoding == CDR
        && c.schema
            .as_ref()
            .is_some_and(|s| s.name == POINTCLOUD2_TYPE)
}

/// The `.mcap` files a path names, in read order.
fn mcap_files(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| io_error(path, e))? {
        let p = entry.map_err(|e| io_error(path, e))?.path();
        if p.is_file() && p.extension().is_some_and(|e| e == "mcap") {
            files.push(p);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(PipelineError::Source {
            path: path.to_path_buf(),
            msg: "no .mcap file in this folder".into(),
        });
    }
    Ok(files)
}

/// The summary section of a file, `None` when it has none.
fn read_summary(path: &Path) -> Result<Option<mcap::Summary>> {
    let mut file = File::open(path).map_err(|e| io_error(path, e))?;
    let mcap_error = |source| PipelineError::Mcap {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = SummaryReader::new();
    while let Some(event) = reader.next_event() {
        match event.map_err(mcap_error)? {
            SummaryReadEvent::ReadRequest(n) => {
                let read = file.read(reader.insert(n)).map_err(|e| io_error(path, e))?;
                reader.notify_read(read);
            }
            SummaryReadEvent::SeekRequest(to) => {
                let pos = file.seek(to).map_err(|e| io_error(path, e))?;
                reader.notify_seeked(pos);
            }
        }
    }
    Ok(reader.finish())
}

impl McapSource {
    /// Opens an `.mcap` file or a rosbag2 folder; `topic` as described in the module docs.
    pub fn open(path: &Path, topic: Option<&str>) -> Result<Self> {
        let files = mcap_files(path)?;
        // A cut-short recording has no summary; its topics are only known by reading it.
        let summaries = files
            .iter()
            .map(|f| read_summary(f).unwrap_or(None))
            .collect::<Vec<_>>();
        let mut cloud_topics = BTreeSet::new();
        let mut first_cloud: Option<(u16, String)> = None;
        for s in summaries.iter().flatten() {
            for c in s.channels.values().filter(|c| is_cloud_channel(c)) {
                cloud_topics.insert(c.topic.clone());
                if first_cloud.as_ref().is_none_or(|(id, _)| c.id < *id) {
                    first_cloud = Some((c.id, c.topic.clone()));
                }
            }
        }
        let all_summarised = summaries.iter().all(Option::is_some);
        let topic = match topic {
            Some(t) if all_summarised && !cloud_topics.contains(t) => {
                return Err(PipelineError::Source {
                    path: path.to_path_buf(),
                    msg: format!(
                        "topic {t} has no {POINTCLOUD2_TYPE} messages in CDR; PointCloud2 topics: {cloud_topics:?}"
                    ),
                });
            }
            Some(t) => Some(t.to_string()),
            None if all_summarised && first_cloud.is_none() => {
                return Err(PipelineError::Source {
                    path: path.to_path_buf(),
                    msg: format!("no {POINTCLOUD2_TYPE} topic in CDR"),
                });
            }
            None => first_cloud.map(|(_, t)| t),
        };
        let expected = match &topic {
            Some(t) if all_summarised => summaries
                .iter()
                .flatten()
                .map(|s| {
                    let stats = s.stats.as_ref()?;
                    let ids = s.channels.values().filter(|c| &c.topic == t).map(|c| c.id);
                    Some(
                        ids.filter_map(|id| stats.channel_message_counts.get(&id))
                            .sum::<u64>(),
                    )
                })
                .sum(),
            _ => None,
        };
        Ok(Self {
            root: path.to_path_buf(),
            current: None,
            pending: files.into(),
            topic,
            expected,
            index: 0,
            seq: 0,
        })
    }

    /// The topic being read, once known.
    pub fn topic(&self) -> Option<&str> {
        self.topic.as_deref()
    }

    fn skip(&mut self, reason: String) -> SourceItem {
        let seq = self.seq;
        self.seq += 1;
        Err(Skip { seq, reason })
    }

    /// Decodes one message of the topic.
    fn frame(&self, path: &Path, log_time: u64, payload: &[u8]) -> Result<Frame> {
        let topic = self.topic.clone().unwrap_or_default();
        let error = |offset: usize, msg: String| PipelineError::Message {
            path: path.to_path_buf(),
            topic: topic.clone(),
            index: self.index,
            log_time_ns: log_time,
            offset,
            msg,
        };
        let msg = PointCloud2::parse(payload).map_err(|e| error(e.offset, e.msg))?;
        let decoded = msg.decode().map_err(|m| error(0, m))?;
        // Some drivers leave the header stamp at zero: the log time is the next best clock.
        let stamp = match decoded.stamp_ns {
            0 => i64::try_from(log_time).unwrap_or(i64::MAX),
            s => s,
        };
        let mut frame = Frame::from_cloud(self.seq, Some(stamp), decoded.cloud);
        frame.non_finite = decoded.non_finite;
        Ok(frame)
    }
}

impl Source for McapSource {
    fn describe(&self) -> String {
        format!(
            "MCAP {}, topic {}",
            self.root.display(),
            self.topic.as_deref().unwrap_or("(first PointCloud2)")
        )
    }

    fn len_hint(&self) -> Option<u64> {
        self.expected
    }

    fn next_frame(&mut self) -> Option<SourceItem> {
        loop {
            let (path, reader) = match &mut self.current {
                Some(current) => current,
                None => {
                    let path = self.pending.pop_front()?;
                    match File::open(&path) {
                        Ok(f) => {
                            let reader = mcap::io::MessageReader::new(BufReader::new(f));
                            self.current.insert((path, reader))
                        }
                        Err(e) => return Some(self.skip(io_error(&path, e).to_string())),
                    }
                }
            };
            let message = match reader.next() {
                None => {
                    self.current = None;
                    continue;
                }
                Some(Err(source)) => {
                    let e = PipelineError::Mcap {
                        path: path.clone(),
                        source,
                    };
                    self.current = None;
                    return Some(self.skip(format!("{e}; the rest of this file is skipped")));
                }
                Some(Ok(m)) => m,
            };
            let on_topic = match &self.topic {
                Some(t) => &message.channel.topic == t,
                None => is_cloud_channel(&message.channel),
            };
            if !on_topic {
                continue;
            }
            if !is_cloud_channel(&message.channel) {
                let c = &message.channel;
                let schema = c.schema.as_ref().map_or("none", |s| s.name.as_str());
                let reason = format!(
                    "{}: message {} on {} has schema {schema} in {}, not {POINTCLOUD2_TYPE} in {CDR}",
                    path.display(),
                    self.index,
                    c.topic,
                    c.message_encoding
                );
                self.index += 1;
                return Some(self.skip(reason));
            }
            self.topic
                .get_or_insert_with(|| message.channel.topic.clone());
            let path = path.clone();
            let item = self.frame(&path, message.log_time, &message.data);
            self.index += 1;
            return Some(match item {
                Ok(frame) => {
                    self.seq += 1;
                    Ok(frame)
                }
                Err(e) => self.skip(e.to_string()),
            });
        }
    }
}
