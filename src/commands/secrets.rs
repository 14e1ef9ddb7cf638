//! `lookctl secrets encrypt|decrypt`: the Cloud KMS file round trip that Makefiles do
//! with `gcloud kms encrypt/decrypt`, byte-compatible with it.

use anyhow::{Context as _, Result};

use crate::cli::{DecryptArgs, EncryptArgs, SecretsCommand};
use crate::config::Config;
use crate::secrets::gcp_kms::KmsClient;
use crate::secrets::{self, DecryptOutcome, DecryptOutput};
use crate::ui::Ui;

pub fn run(command: &SecretsCommand, config: Option<&Config>, ui: &Ui) -> Result<()> {
    match command {
        SecretsCommand::Encrypt(args) => encrypt(args, config, ui),
        SecretsCommand::Decrypt(args) => decrypt(args, config, ui),
    }
}

fn client_and_key(
    kms: &crate::cli::KmsArgs,
    config: Option<&Config>,
) -> Result<(KmsClient, String)> {
    let settings = crate::settings::secrets(kms, config, None);
    let Some(key) = settings.kms_key.clone() else {
        return Err(crate::settings::SettingsError::NoKmsKey.into());
    };
    let client = KmsClient::new(settings.kms_config()).context("creating the Cloud KMS client")?;
    Ok((client, key))
}

fn encrypt(args: &EncryptArgs, config: Option<&Config>, ui: &Ui) -> Result<()> {
    let (client, key) = client_and_key(&args.kms, config)?;
    let written = secrets::encrypt_file(
        &secrets::EncryptFileOptions {
            input: args.file.clone(),
            output: args.output.clone(),
            key,
            force: args.force,
        },
        &client,
    )?;
    ui.note(&format!(
        "encrypted {} -> {}",
        args.file.display(),
        written.display()
    ));
    Ok(())
}

fn decrypt(args: &DecryptArgs, config: Option<&Config>, ui: &Ui) -> Result<()> {
    let (client, key) = client_and_key(&args.kms, config)?;
    let output = if args.output.as_os_str() == "-" {
        DecryptOutput::Stdout
    } else {
        DecryptOutput::File(args.output.clone())
    };
    let outcome = secrets::decrypt_file(
        &secrets::DecryptFileOptions {
            input: args.file.clone(),
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
                args.file.display(),
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
