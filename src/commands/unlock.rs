//! `lookctl unlock TARGET`: delete a target's deploy lock by hand, refusing while its
//! holder still renews it (a deploy is running) unless `--force`.

use anyhow::Result;

use crate::cluster::{self, ClusterClient, NoProgress};
use crate::settings::UnlockSettings;
use crate::ui::Ui;

pub fn run(settings: &UnlockSettings, ui: &Ui) -> Result<()> {
    let found = super::runtime()?.block_on(async {
        let client =
            ClusterClient::connect(settings.kubeconfig.as_deref(), &settings.context).await?;
        client.check_reachable(&NoProgress).await?;
        cluster::unlock(&client, &settings.target, settings.force, &NoProgress).await
    })?;
    ui.unlocked(&settings.target, &settings.context, &found);
    Ok(())
}
