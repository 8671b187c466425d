//! `sysc template list`, `sysc image list` and `sysc image delete`.

use serde::Serialize;
use sysc_proto::v1::images_client::ImagesClient;
use sysc_proto::v1::{DeleteImageRequest, Image, ListImagesRequest, ListTemplatesRequest, Template};
use tonic::transport::Channel;

use crate::connect::rpc_error;
use crate::format::{self, Layout, Listing, OutputFormat};

/// Enough of a fingerprint to tell images apart in a table, as git abbreviates hashes.
pub const SHORT_FINGERPRINT: usize = 12;

pub async fn list_templates(channel: Channel, format: OutputFormat) -> anyhow::Result<()> {
    let mut templates = ImagesClient::new(channel)
        .list_templates(ListTemplatesRequest {})
        .await
        .map_err(rpc_error)?
        .into_inner()
        .templates;
    templates.sort_by(|a, b| a.name.cmp(&b.name));
    format::print(&format::render(&templates, format)?)?;
    Ok(())
}

pub async fn list_images(channel: Channel, format: OutputFormat) -> anyhow::Result<()> {
    let mut images = ImagesClient::new(channel)
        .list_images(ListImagesRequest {})
        .await
        .map_err(rpc_error)?
        .into_inner()
        .images;
    images.sort_by(|a, b| {
        (&a.template, &a.release, &a.arch, &a.fingerprint).cmp(&(&b.template, &b.release, &b.arch, &b.fingerprint))
    });
    format::print(&format::render(&images, format)?)?;
    Ok(())
}

pub async fn delete_image(channel: Channel, fingerprint: String) -> anyhow::Result<()> {
    ImagesClient::new(channel)
        .delete_image(DeleteImageRequest { fingerprint })
        .await
        .map_err(rpc_error)?;
    Ok(())
}

#[derive(Debug, Serialize)]
pub struct TemplateRecord {
    name: String,
    description: String,
    path: String,
    default_release: String,
    halt_signal: String,
}

impl Listing for Template {
    type Record = TemplateRecord;
    const HEADER: &'static [&'static str] = &["NAME", "DESCRIPTION", "DEFAULT RELEASE", "HALT SIGNAL"];

    fn record(&self) -> TemplateRecord {
        TemplateRecord {
            name: self.name.clone(),
            description: self.description.clone(),
            path: self.path.clone(),
            default_release: self.default_release.clone(),
            halt_signal: self.halt_signal.clone(),
        }
    }

    fn cells(&self, _layout: Layout) -> Vec<String> {
        vec![
            self.name.clone(),
            self.description.clone(),
            self.default_release.clone(),
            self.halt_signal.clone(),
        ]
    }
}

#[derive(Debug, Serialize)]
pub struct ImageRecord {
    fingerprint: String,
    template: String,
    release: String,
    arch: String,
    description: String,
    size_bytes: u64,
    created_at: Option<String>,
    used_by: Vec<String>,
    pool: String,
}

impl Listing for Image {
    type Record = ImageRecord;
    const HEADER: &'static [&'static str] = &[
        "FINGERPRINT",
        "TEMPLATE",
        "RELEASE",
        "ARCH",
        "POOL",
        "SIZE",
        "CREATED",
        "USED BY",
    ];

    fn record(&self) -> ImageRecord {
        ImageRecord {
            fingerprint: self.fingerprint.clone(),
            template: self.template.clone(),
            release: self.release.clone(),
            arch: self.arch.clone(),
            description: self.description.clone(),
            size_bytes: self.size_bytes,
            created_at: format::rfc3339(self.created_at.as_ref()),
            used_by: self.used_by.clone(),
            pool: self.pool.clone(),
        }
    }

    fn cells(&self, layout: Layout) -> Vec<String> {
        // Programs get the whole fingerprint, which `image delete` always accepts.
        let fingerprint = match layout {
            Layout::Table => self.fingerprint.chars().take(SHORT_FINGERPRINT).collect(),
            Layout::Csv => self.fingerprint.clone(),
        };
        vec![
            fingerprint,
            self.template.clone(),
            self.release.clone(),
            self.arch.clone(),
            self.pool.clone(),
            format::human_size(self.size_bytes),
            format::local_time(self.created_at.as_ref()).unwrap_or_else(|| layout.empty().to_string()),
            layout.join(&self.used_by),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_image() -> Image {
        Image {
            fingerprint: "3f2a9c1d8e7b4455667788".into(),
            template: "debian".into(),
            release: "bookworm".into(),
            arch: "amd64".into(),
            description: "Debian bookworm".into(),
            size_bytes: 179_516_211,
            created_at: None,
            used_by: vec!["web1".into(), "web2".into()],
            pool: "default".into(),
        }
    }

    #[test]
    fn image_table_abbreviates_what_csv_keeps_whole() {
        let image = sample_image();
        assert_eq!(
            image.cells(Layout::Table),
            [
                "3f2a9c1d8e7b",
                "debian",
                "bookworm",
                "amd64",
                "default",
                "171.2 MiB",
                "-",
                "web1\nweb2"
            ]
        );
        assert_eq!(
            image.cells(Layout::Csv),
            [
                "3f2a9c1d8e7b4455667788",
                "debian",
                "bookworm",
                "amd64",
                "default",
                "171.2 MiB",
                "",
                "web1 web2"
            ]
        );
    }

    #[test]
    fn image_json_keeps_exact_numbers() {
        let json = serde_json::to_value(sample_image().record()).unwrap();
        assert_eq!(json["size_bytes"], 179_516_211);
        assert_eq!(json["used_by"], serde_json::json!(["web1", "web2"]));
        assert_eq!(json["created_at"], serde_json::Value::Null);
        assert_eq!(json["pool"], "default");
    }

    #[test]
    fn template_row_follows_header() {
        let template = Template {
            name: "busybox".into(),
            description: "A tiny busybox system".into(),
            path: "/usr/share/sysc/templates/busybox".into(),
            default_release: "1.36".into(),
            halt_signal: "SIGUSR1".into(),
        };
        assert_eq!(
            template.cells(Layout::Table),
            ["busybox", "A tiny busybox system", "1.36", "SIGUSR1"]
        );
    }
}
