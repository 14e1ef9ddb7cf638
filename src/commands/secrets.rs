//! `lookctl secrets encrypt|decrypt`: the Cloud KMS file round trip that Makefiles do
//! with `gcloud kms encrypt/decrypt`, byte-compatible with it.

use anyhow::{Context as _, Result};

use crate::secrets::gcp_kms::KmsClient;
use crate::secrets::{self, DecryptOutcome, DecryptOutput};
use crate::settings::{SecretsFileSettings, SecretsOp, SecretsSettings};
use crate::ui::Ui;

pub fn run(settings: &SecretsFileSettings, ui: &Ui) -> Result<()> {
    match settings.op {
        SecretsOp::Encrypt => encrypt(settings, ui),
        SecretsOp::Decrypt => decrypt(settings, ui),
    }
}

fn client_and_key(settings: &SecretsSettings) -> Result<(KmsClient, String)> {
    let Some(key) = settings.kms_key.clone() else {
        return Err(crate::settings::SettingsError::NoKmsKey.into());
    };
    let client = KmsClient::new(settings.kms_config()).context("creating the Cloud KMS client")?;
    Ok((client, key))
}

fn encrypt(args: &SecretsFileSettings, ui: &Ui) -> Result<()> {
    let (client, key) = client_and_key(&args.kms)?;
    let written = secrets::encrypt_file(
        &secrets::EncryptFileOptions {
            input: args.input.clone(),
            output: args.output.clone(),
            key,
            force: args.force,
        },
        &client,
    )?;
    ui.note(&format!(
        "encrypted {} -> {}",
        args.input.display(),
        written.display()
    ));
    Ok(())
}

fn decrypt(args: &SecretsFileSettings, ui: &Ui) -> Result<()> {
    let (client, key) = client_and_key(&args.kms)?;
    let output = match &args.output {
        Some(path) if path.as_os_str() == "-" => DecryptOutput::Stdout,
        Some(path) => DecryptOutput::File(path.clone()),
        None => return Err(crate::settings::SettingsError::NoDecryptOutput.into()),
    };
    let outcome = secrets::decrypt_file(
        &secrets::DecryptFileOptions {
            input: args.input.clone(),
            output,
            key,
            force: args.force,
        },
        &client,
    )?;
    match outcome {
        DecryptOutcome::Stdout(plaintext) => {
            ui.out_bytes(plaintext.expose())?;
        }
        DecryptOutcome::Written {
            path,
            unignored_in_work_tree,
        } => {
            ui.note(&format!(
                "decrypted {} -> {}",
                args.input.display(),
                path.display()
            ));
            if unignored_in_work_tree {
                ui.note(&format!(
                    "warning: {} is inside a git work tree and not ignored; add it to .gitignore",
                    path.display()
                ));
            }
        }
    }
    Ok(())
}
